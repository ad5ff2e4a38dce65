//! client-go's event correlator (k8s.io/client-go/tools/record/events_cache.go), which
//! every event broadcaster runs between a recorder and the API: similar events are
//! aggregated, identical ones counted on the first one, and each source may burst 25
//! events about an object, then one every 5 minutes.
//!
//! `EventRecorder` builds each event afresh; a process runs every event it sends through
//! one correlator (upstream runs one per broadcaster; their keys all start with the
//! event's source, so one per process keeps them apart the same way).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::{Event, Object};
use crate::client::{ApiRequest, TokenBucket};
use crate::time::SimTime;

/// events_cache.go maxLruCacheEntries: each of the three caches keeps this many keys.
pub const LRU_CACHE_ENTRIES: usize = 4096;
/// defaultAggregateMaxEvents: a similar event seen this many times (different messages)
/// within the interval is aggregated.
pub const AGGREGATE_MAX_EVENTS: usize = 10;
/// defaultAggregateIntervalInSeconds.
pub const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
/// defaultSpamBurst: events a source may send about an object at once.
pub const SPAM_BURST: u32 = 25;
/// defaultSpamQPS: the refill, one event every 5 minutes.
pub const SPAM_QPS: f64 = 1.0 / 300.0;
/// EventAggregatorByReasonMessageFunc's prefix.
pub const AGGREGATE_PREFIX: &str = "(combined from similar events): ";

/// A least-recently-used map of at most `cap` keys (groupcache's lru.Cache).
#[derive(Debug)]
struct Lru<V> {
    cap: usize,
    entries: BTreeMap<String, (V, u64)>,
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl<V> Lru<V> {
    fn new(cap: usize) -> Self {
        Lru { cap, entries: BTreeMap::new(), order: BTreeMap::new(), tick: 0 }
    }

    /// Looks a key up, making it the most recently used.
    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let e = self.entries.get_mut(key)?;
        self.order.remove(&e.1);
        self.tick += 1;
        self.order.insert(self.tick, key.to_string());
        e.1 = self.tick;
        Some(&mut e.0)
    }

    fn add(&mut self, key: String, value: V) {
        self.tick += 1;
        // A known key is updated in place (one search), as remove-then-insert would.
        if let Some(e) = self.entries.get_mut(&key) {
            self.order.remove(&e.1);
            *e = (value, self.tick);
            self.order.insert(self.tick, key);
            return;
        }
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (value, self.tick));
        while self.entries.len() > self.cap {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }
}

#[derive(Debug)]
struct AggregateRecord {
    /// The distinct messages seen (EventAggregator's localKeys).
    messages: std::collections::BTreeSet<String>,
    last: SimTime,
}

#[derive(Clone, Debug)]
struct EventLog {
    count: i32,
    first: Option<SimTime>,
    name: String,
}

/// What the correlator made of an event.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // returned and moved once
pub enum Correlated {
    /// Send this: a Create of a new event, or an Update counting an earlier one.
    Send(ApiRequest),
    /// The spam filter dropped it.
    Skip,
}

/// The correlator of one event broadcaster.
#[derive(Debug)]
pub struct EventCorrelator {
    aggregates: Lru<AggregateRecord>,
    logs: Lru<EventLog>,
    spam: Lru<TokenBucket>,
}

impl Default for EventCorrelator {
    fn default() -> Self {
        EventCorrelator {
            aggregates: Lru::new(LRU_CACHE_ENTRIES),
            logs: Lru::new(LRU_CACHE_ENTRIES),
            spam: Lru::new(LRU_CACHE_ENTRIES),
        }
    }
}

/// getEventKey: source, involved object, type, reason, message.
fn event_key(e: &Event) -> String {
    let o = &e.involved_object;
    [
        e.source.component.as_str(),
        &e.source.host,
        &o.kind,
        &o.namespace,
        &o.name,
        &o.field_path,
        &o.uid,
        &o.api_version,
        &e.type_,
        &e.reason,
        &e.message,
    ]
    .concat()
}

/// getSpamKey: source and involved object.
fn spam_key(e: &Event) -> String {
    let o = &e.involved_object;
    [e.source.component.as_str(), &e.source.host, &o.kind, &o.namespace, &o.name, &o.uid, &o.api_version]
        .concat()
}

/// EventAggregatorByReasonFunc: what similar events share (the message is the local key).
fn aggregate_key(e: &Event) -> String {
    let o = &e.involved_object;
    [
        e.source.component.as_str(),
        &e.source.host,
        &o.kind,
        &o.namespace,
        &o.name,
        &o.uid,
        &o.api_version,
        &e.type_,
        &e.reason,
        &e.reporting_component,
        &e.reporting_instance,
    ]
    .concat()
}

impl EventCorrelator {
    /// EventCorrelate: aggregate, then observe (count an identical event on the first
    /// one), then the spam filter. `event` is a fresh event as a recorder built it.
    pub fn correlate(&mut self, event: Event, now: SimTime) -> Correlated {
        let (event, key) = self.aggregate(event, now);
        let (event, repeat) = self.observe(event, key);
        if self.is_spam(&event, now) {
            return Correlated::Skip;
        }
        let obj = Object::Event(event);
        Correlated::Send(if repeat { ApiRequest::Update(obj) } else { ApiRequest::Create(obj) })
    }

    /// EventAggregate: the 10th distinct message of a similar event within 10 minutes
    /// (and every one after) becomes one aggregate event, keyed to be counted.
    fn aggregate(&mut self, event: Event, now: SimTime) -> (Event, String) {
        let key = aggregate_key(&event);
        let fresh = |r: &AggregateRecord| now.saturating_sub(r.last) > AGGREGATE_INTERVAL;
        let mut record = match self.aggregates.get_mut(&key) {
            Some(r) if !fresh(r) => {
                std::mem::replace(r, AggregateRecord { messages: Default::default(), last: now })
            }
            _ => AggregateRecord { messages: Default::default(), last: now },
        };
        record.messages.insert(event.message.clone());
        record.last = now;
        if record.messages.len() < AGGREGATE_MAX_EVENTS {
            self.aggregates.add(key, record);
            return (event.clone(), event_key(&event));
        }
        // Do not grow the set past the max (PopAny: Go's map order is random; the
        // smallest message goes here, deterministically).
        record.messages.pop_first();
        self.aggregates.add(key.clone(), record);
        let aggregate = Event {
            message: format!("{AGGREGATE_PREFIX}{}", event.message),
            count: 1,
            first_timestamp: Some(now),
            last_timestamp: Some(now),
            reporting_component: String::new(),
            reporting_instance: String::new(),
            ..event
        };
        (aggregate, key)
    }

    /// eventLogger.eventObserve: an event seen before under `key` becomes a count on the
    /// first one (same name, first timestamp; count + 1).
    fn observe(&mut self, mut event: Event, key: String) -> (Event, bool) {
        let repeat = match self.logs.get_mut(&key) {
            Some(log) if log.count > 0 => {
                event.metadata.name = log.name.clone();
                event.first_timestamp = log.first;
                event.count = log.count + 1;
                true
            }
            _ => false,
        };
        let log =
            EventLog { count: event.count, first: event.first_timestamp, name: event.metadata.name.clone() };
        self.logs.add(key, log);
        (event, repeat)
    }

    /// EventSourceObjectSpamFilter.Filter: a token bucket per source and object.
    fn is_spam(&mut self, event: &Event, now: SimTime) -> bool {
        let key = spam_key(event);
        let mut bucket = match self.spam.get_mut(&key) {
            Some(b) => b.clone(),
            None => TokenBucket::starting_at(SPAM_QPS, SPAM_BURST, now),
        };
        let spam = !bucket.try_take(now);
        self.spam.add(key, bucket);
        spam
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EventSource, ObjectMeta, ObjectReference};

    fn event(message: &str, now: SimTime) -> Event {
        Event {
            metadata: ObjectMeta {
                name: format!("p.{}", now.as_millis()),
                namespace: "default".into(),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: "Pod".into(),
                name: "p".into(),
                namespace: "default".into(),
                ..Default::default()
            },
            reason: "BackOff".into(),
            message: message.into(),
            source: EventSource { component: "kubelet".into(), host: "node-1".into() },
            count: 1,
            first_timestamp: Some(now),
            last_timestamp: Some(now),
            type_: "Warning".into(),
            ..Default::default()
        }
    }

    fn sent(c: Correlated) -> (bool, Event) {
        match c {
            Correlated::Send(ApiRequest::Create(Object::Event(e))) => (false, e),
            Correlated::Send(ApiRequest::Update(Object::Event(e))) => (true, e),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_identical_event_counts_on_the_first() {
        let mut c = EventCorrelator::default();
        let (update, first) = sent(c.correlate(event("m", SimTime(1000)), SimTime(1000)));
        assert!(!update);
        let (update, second) = sent(c.correlate(event("m", SimTime(5000)), SimTime(5000)));
        assert!(update);
        assert_eq!((second.metadata.name, second.count), (first.metadata.name, 2));
        assert_eq!(second.first_timestamp, Some(SimTime(1000)));
        assert_eq!(second.last_timestamp, Some(SimTime(5000)));
    }

    /// The 10th distinct message of one reason about one object within 10 minutes is
    /// aggregated; later ones count on the aggregate.
    #[test]
    fn ten_similar_events_aggregate() {
        let mut c = EventCorrelator::default();
        for i in 0..9 {
            let (update, e) = sent(c.correlate(event(&format!("m{i}"), SimTime(i)), SimTime(i)));
            assert!(!update && !e.message.starts_with(AGGREGATE_PREFIX));
        }
        let (update, tenth) = sent(c.correlate(event("m9", SimTime(9)), SimTime(9)));
        assert!(!update);
        assert_eq!(tenth.message, "(combined from similar events): m9");
        let (update, eleventh) = sent(c.correlate(event("m10", SimTime(10)), SimTime(10)));
        assert!(update, "counted on the aggregate");
        assert_eq!((eleventh.metadata.name, eleventh.count), (tenth.metadata.name, 2));
        assert_eq!(eleventh.message, "(combined from similar events): m10");
    }

    /// 25 events a source may send about an object; then one every 5 minutes.
    #[test]
    fn the_spam_filter_allows_a_burst_of_25_then_one_per_5_minutes() {
        let mut c = EventCorrelator::default();
        let t = SimTime::from_secs(100);
        let passed =
            (0..40).filter(|i| c.correlate(event(&format!("x{}", i % 3), t), t) != Correlated::Skip).count();
        assert_eq!(passed, 25);
        let later = t + Duration::from_secs(299);
        assert_eq!(c.correlate(event("x0", later), later), Correlated::Skip);
        let later = t + Duration::from_secs(301);
        assert_ne!(c.correlate(event("x0", later), later), Correlated::Skip);
    }
}
