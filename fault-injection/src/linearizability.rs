//! Linearizability checking of client histories: did the replicated etcd behave like one
//! register per key?
//!
//! This module owns the history vocabulary ([`Operation`]), the [`Model`] trait (a sequential
//! specification, as in porcupine), the first model ([`KvRegister`]: read, write,
//! compare-and-swap and delete on one key) and the checker ([`check`]), which answers
//! [`Verdict::Linearizable`], [`Verdict::NotLinearizable`] with a short account a user can
//! read, or [`Verdict::Unknown`] when its search budget runs out. It never claims a verdict it
//! did not reach.
//!
//! # Algorithm
//!
//! Wing & Gong's search ("Testing and verifying concurrent objects", 1993) with Lowe's
//! memoization ("Testing for linearizability", 2017), as anishathalye/porcupine implements it,
//! checked per key (Horn & Kroening, "Faster linearizability checking via
//! P-compositionality", 2015): a history is linearizable iff each key's sub-history is, so a
//! large history splits into small independent searches.
//!
//! For one key, the call and return events are sorted by time into a doubly linked list. A
//! depth-first search linearizes one operation at a time: any operation whose call comes
//! before the first return still in the list may go next, provided the model accepts its
//! observed output from the current state; the operation's events are then unlinked
//! (dancing links), and relinked on backtracking. A configuration is the set of linearized
//! operations plus the model state; configurations already explored are remembered and not
//! explored again. Calls are ordered before returns at equal times, so an operation that
//! completed at the millisecond another was invoked counts as concurrent with it: a 1 ms
//! clock can never produce a false alarm.
//!
//! On register histories with tens of operations in flight, that search alone runs out of
//! budget within a hundred operations: it tries concurrent writes in invocation order and
//! finds a wrong order only when a read much later cannot be placed. A model that describes
//! its operations ([`Model::effect`], [`Model::required_state`], [`Model::distinguishes`]; the
//! register does) enables reductions that never change a verdict (a property test compares
//! them with trying every order):
//! - read-only first: an operation that never changes the state (a read, a failed
//!   compare-and-swap) is linearized as soon as the model accepts it, with no alternative
//!   tried: any linearization can be reordered to put it there, since nothing still pending
//!   had to precede it;
//! - lookahead: a configuration is dropped as soon as a completed operation still to be
//!   linearized needs a state (a read of 1 needs the value 1) that is not the current one
//!   and that nothing left, invoked before that operation completed, can produce; or as soon
//!   as more operations must each find a state and replace it (successful compare-and-swaps
//!   from it) than there are operations left that can produce it (plus one if current);
//! - the same two rules before any search, plus the stale-read rule: an operation needing a
//!   state whose every possible writer (and the initial state) was followed by a completed
//!   overwrite that itself completed before the operation was invoked. Stale reads, lost
//!   writes, reads of values never written and double-applied compare-and-swaps are reported
//!   this way at once, with an explanation naming the operations involved;
//! - interchangeable states: two states that nothing left singles out, and that the model
//!   puts in one class (for the register: two values that no pending read, compare-and-swap
//!   or delete mentions), share memo entries.
//!
//! Operations whose outcome is unknown (`complete: None`: a timeout, a lost response) take
//! effect at most once, at any time after their invocation, or never. Porcupine models this
//! by completing them at +infinity with any output accepted; that lets the search linearize
//! them greedily, and a history with many of them pending then blows up exponentially. This
//! checker keeps the semantics but searches them lazily:
//! - the search is done when every *completed* operation is linearized (the unknown ones
//!   left over never took effect); unknown reads are dropped up front;
//! - at each configuration, completed operations are tried first; unknown ones only after,
//!   those that let the next operation to return take effect first;
//! - an unknown operation that would not change the state is not tried (moving it to the
//!   end, where it never took effect, gives the same linearization);
//! - memoization uses dominance: configuration (C, U, s) — completed set C, unknown set U,
//!   state s — is skipped if (C, U', s) with U' a subset of U was explored, because whatever
//!   completes from (C, U, s) also completes from (C, U', s), leaving the extra unknown
//!   operations out. A configuration's unknown successors are all recorded before any of
//!   them is explored, so a run of unknown writes costs one configuration per write, not
//!   one per subset.
//!
//! The budget counts model steps per key ([`CheckOptions::max_steps_per_key`]); the memo
//! records at most one configuration per step, so the budget also bounds memory.
//!
//! # Cost, and what ends as Unknown
//!
//! Measured in release (tests `large_history_is_checked_within_budget` and
//! `violation_late_in_a_long_history_is_proved_by_the_search` and variations): a linearizable
//! key history of 3,000 operations, about 30 in flight (60 at peak), 2% with unknown
//! outcomes, takes 290,000 steps (tens of milliseconds); without unknown outcomes 31,000. A
//! violation the rules above see costs nothing. One they do not see (two concurrent writes,
//! then reads that see them in both orders) is proved only by exhausting every configuration
//! before it: 57,000 steps after 1,000 operations with about 10 in flight, 240,000 with 2%
//! unknown outcomes, 3.5 million (a third of a second) after 300 operations with 30 in
//! flight, but more than 30 million after 1,000 of those: beyond the default budget, such a
//! history ends as [`Verdict::Unknown`]. Raise the budget, or check shorter histories.
//!
//! # How the simulation feeds it
//!
//! The simulated etcd clients record one [`Operation`] per request on a key: the client's id,
//! the key, the request as an [`Input`], the simulated time it was sent (`invoke`) and, when
//! the response arrives, the time (`complete`) and what it said ([`Output`]). A request that
//! times out or whose response is lost is recorded with `complete: None` (it may still have
//! been committed). A request that definitely failed without effect (rejected before it was
//! proposed) is left out. Reads must be linearizable reads (etcd's default, not
//! `serializable`); a serializable read from a follower may legitimately be stale. After the
//! run, [`check`] with [`KvRegister`] gives the verdict; `NotLinearizable` names the key and
//! explains the operations that cannot be ordered.
//!
//! Determinism: no threads, no clock, no iteration over hashed collections: the memo's hash
//! map, keyed by a Zobrist hash of the linearized set, is only looked up. Keys are checked in
//! key order, and the first key that fails is the one reported.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

/// Default for [`CheckOptions::max_steps_per_key`]: about a second and 100 MB at most (10
/// million steps a second and 85 bytes of memo per recorded configuration, measured in
/// release on the project's 2-core machine; one configuration every 8 steps or so). A
/// linearizable register history of 3,000 operations with 30 in flight takes 300,000 steps.
pub const DEFAULT_MAX_STEPS_PER_KEY: u64 = 10_000_000;

/// How many operations of the longest linearizable prefix an explanation shows.
const EXPLAIN_PREFIX_OPS: usize = 5;
/// How many pending operations an explanation lists.
const EXPLAIN_PENDING_OPS: usize = 8;

/// One client operation on one key, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation<K, I, O> {
    /// Who issued it. Only used to describe the operation: it is the invoke and complete
    /// times that constrain the order.
    pub client: u64,
    /// The object it acts on; the history is checked one key at a time.
    pub key: K,
    /// The request.
    pub input: I,
    /// The response the client observed; ignored when `complete` is `None`.
    pub output: O,
    /// Simulated milliseconds when the client sent the request.
    pub invoke: u64,
    /// Simulated milliseconds when the client received the response; `None` when it never
    /// did (timeout, lost response): the operation may have taken effect at any time after
    /// `invoke`, or never.
    pub complete: Option<u64>,
}

/// A sequential specification of one object (one key): what a single correct copy would do.
pub trait Model {
    /// A request, as explanations show it.
    type Input: fmt::Display;
    /// A response, as explanations show it.
    type Output: fmt::Display;
    /// What the object holds. `Ord` for the lookahead's tables, `Debug` for the default
    /// [`Model::describe_state`].
    type State: Clone + Ord + fmt::Debug;

    /// The state of an object nobody has touched.
    fn init(&self) -> Self::State;

    /// The state after `input` takes effect in `state`, or `None` if it cannot produce
    /// `output` there. `output` is `None` when it was never observed: the model applies the
    /// input and accepts whatever it would have returned.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// What `input` (with `output`, `None` if never observed) can do to the state wherever
    /// [`Model::step`] accepts it. Enables the reductions in the module header; the default,
    /// [`Effect::Other`], is always correct, only slower.
    fn effect(&self, _input: &Self::Input, _output: Option<&Self::Output>) -> Effect<Self::State> {
        Effect::Other
    }

    /// The one state in which [`Model::step`] accepts `input` returning `output`, if there is
    /// only one (a read: the value it returned). Used by the lookahead when no operation has
    /// [`Effect::Other`]; the default, `None`, is always correct, only slower.
    fn required_state(&self, _input: &Self::Input, _output: &Self::Output) -> Option<Self::State> {
        None
    }

    /// The one state `input` (with `output`, `None` if never observed) treats differently
    /// from all others, or what it does with every state alike: a read of 1 singles out 1, a
    /// compare-and-swap its expected value, a delete the absent key; a write treats all states
    /// alike. "Alike": accepted in all or none, and leaving the same state or each unchanged.
    /// The default, [`Distinguishes::Anything`], is always correct, only slower.
    fn distinguishes(
        &self,
        _input: &Self::Input,
        _output: Option<&Self::Output>,
    ) -> Distinguishes<Self::State> {
        Distinguishes::Anything
    }

    /// States in the same class that no operation still to be linearized singles out (see
    /// [`Model::distinguishes`]) are interchangeable, and the search explores only one of
    /// them. The register puts every present value in one class. Default: no class.
    fn interchangeable_class(&self, _state: &Self::State) -> Option<u64> {
        None
    }

    /// The state as an explanation shows it.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// What an operation can do to the state, for [`Model::effect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<S> {
    /// Never changes it (a read, a failed compare-and-swap).
    ReadOnly,
    /// Whenever it changes it, leaves exactly this state; and when its output was observed,
    /// the state after it is this one, changed or not (a write, a successful
    /// compare-and-swap, a delete that found the key; with an unknown outcome, any
    /// compare-and-swap or delete).
    Sets(S),
    /// Anything else, or not described.
    Other,
}

/// Which states an operation tells apart, for [`Model::distinguishes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Distinguishes<S> {
    /// It treats all states alike (a write).
    Nothing,
    /// It treats this state one way and all others alike (a read, a compare-and-swap).
    One(S),
    /// Anything else, or not described.
    Anything,
}

/// What the checker concluded about a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<K> {
    /// Every key's operations can be ordered, respecting real time, so that the model
    /// accepts each observed output.
    Linearizable,
    /// This key's operations cannot be ordered. If several keys fail, the first in key order.
    NotLinearizable { key: K, explanation: String },
    /// No key failed, but the search budget ran out on these keys (in key order).
    Unknown { keys: Vec<K> },
}

/// Limits of the search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Model steps the search may take on one key before giving up with
    /// [`Verdict::Unknown`]. Memory grows with it too (one memo entry per step at most).
    pub max_steps_per_key: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { max_steps_per_key: DEFAULT_MAX_STEPS_PER_KEY }
    }
}

/// A request on one key of a key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input<V> {
    /// A linearizable read of the key.
    Read,
    /// Put the value, whatever was there.
    Write(V),
    /// Write `new` if the value is `expected` (`None`: if the key is absent, i.e. create).
    Cas { expected: Option<V>, new: V },
    /// Remove the key.
    Delete,
}

/// The response to an [`Input`] of the same kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output<V> {
    /// The value read, `None` if the key was absent.
    Read(Option<V>),
    /// The write was acknowledged.
    Write,
    /// Whether the swap happened.
    Cas(bool),
    /// Whether there was something to delete.
    Delete(bool),
}

/// An operation on a key-value store.
pub type KvOperation<V> = Operation<String, Input<V>, Output<V>>;

/// One key of a key-value store (etcd's Range, Put, Txn compare-and-swap, DeleteRange on a
/// single key): the state is the value, `None` when the key is absent.
pub struct KvRegister<V>(PhantomData<fn() -> V>);

impl<V> KvRegister<V> {
    /// The register model for values of type `V`.
    pub fn new() -> Self {
        KvRegister(PhantomData)
    }
}

impl<V> Default for KvRegister<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Ord + fmt::Debug> Model for KvRegister<V> {
    type Input = Input<V>;
    type Output = Output<V>;
    type State = Option<V>;

    fn init(&self) -> Option<V> {
        None
    }

    fn step(&self, state: &Option<V>, input: &Input<V>, output: Option<&Output<V>>) -> Option<Option<V>> {
        match (input, output) {
            (Input::Read, None) => Some(state.clone()),
            (Input::Read, Some(Output::Read(seen))) => (seen == state).then(|| state.clone()),
            (Input::Write(value), None | Some(Output::Write)) => Some(Some(value.clone())),
            (Input::Cas { expected, new }, output) => {
                let swaps = expected == state;
                match output {
                    None => {}
                    Some(Output::Cas(swapped)) if *swapped == swaps => {}
                    Some(Output::Cas(_)) => return None,
                    Some(other) => mismatched(input, other),
                }
                Some(if swaps { Some(new.clone()) } else { state.clone() })
            }
            (Input::Delete, None) => Some(None),
            (Input::Delete, Some(Output::Delete(existed))) => (*existed == state.is_some()).then_some(None),
            (input, Some(output)) => mismatched(input, output),
        }
    }

    fn effect(&self, input: &Input<V>, output: Option<&Output<V>>) -> Effect<Option<V>> {
        match (input, output) {
            (Input::Read, _) | (Input::Cas { .. }, Some(Output::Cas(false))) => Effect::ReadOnly,
            (Input::Delete, Some(Output::Delete(false))) => Effect::ReadOnly,
            (Input::Write(value), _) | (Input::Cas { new: value, .. }, _) => {
                Effect::Sets(Some(value.clone()))
            }
            (Input::Delete, _) => Effect::Sets(None),
        }
    }

    fn required_state(&self, input: &Input<V>, output: &Output<V>) -> Option<Option<V>> {
        match (input, output) {
            (Input::Read, Output::Read(seen)) => Some(seen.clone()),
            (Input::Cas { expected, .. }, Output::Cas(true)) => Some(expected.clone()),
            (Input::Delete, Output::Delete(false)) => Some(None),
            _ => None,
        }
    }

    fn distinguishes(&self, input: &Input<V>, output: Option<&Output<V>>) -> Distinguishes<Option<V>> {
        match input {
            Input::Write(_) => Distinguishes::Nothing,
            Input::Cas { expected, .. } => Distinguishes::One(expected.clone()),
            // A read's answer is compared with the value (an unknown one is dropped anyway).
            Input::Read => match output {
                Some(Output::Read(seen)) => Distinguishes::One(seen.clone()),
                _ => Distinguishes::Nothing,
            },
            // Whether the key exists: every present value alike.
            Input::Delete => Distinguishes::One(None),
        }
    }

    fn interchangeable_class(&self, state: &Option<V>) -> Option<u64> {
        state.as_ref().map(|_| 0)
    }

    fn describe_state(&self, state: &Option<V>) -> String {
        describe_value(state)
    }
}

/// A response of another kind than its request is a recording bug, not an observation.
fn mismatched<V: fmt::Debug>(input: &Input<V>, output: &Output<V>) -> ! {
    panic!("history records {output:?} as the response to {input:?}: the recorder is broken")
}

fn describe_value<V: fmt::Debug>(value: &Option<V>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "absent".to_string(),
    }
}

impl<V: fmt::Debug> fmt::Display for Input<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Read => write!(f, "read"),
            Input::Write(v) => write!(f, "write {v:?}"),
            Input::Cas { expected: Some(e), new } => write!(f, "cas {e:?} -> {new:?}"),
            Input::Cas { expected: None, new } => write!(f, "create {new:?}"),
            Input::Delete => write!(f, "delete"),
        }
    }
}

impl<V: fmt::Debug> fmt::Display for Output<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Read(v) => write!(f, "{}", describe_value(v)),
            Output::Write | Output::Cas(true) => write!(f, "ok"),
            Output::Cas(false) => write!(f, "failed"),
            Output::Delete(true) => write!(f, "deleted"),
            Output::Delete(false) => write!(f, "not found"),
        }
    }
}

/// Checks `history` against `model`, one key at a time.
///
/// # Panics
/// If an operation completes before it was invoked: the recorder is broken.
pub fn check<M, K>(
    model: &M,
    history: &[Operation<K, M::Input, M::Output>],
    options: &CheckOptions,
) -> Verdict<K>
where
    M: Model,
    K: Ord + Clone + fmt::Debug,
{
    let mut by_key: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let Some(complete) = op.complete {
            assert!(
                complete >= op.invoke,
                "op {index} on {:?} completes at {complete} ms, before its invoke at {} ms",
                op.key,
                op.invoke
            );
        }
        by_key.entry(&op.key).or_default().push(index);
    }
    let mut unknown = Vec::new();
    for (key, indices) in by_key {
        match Search::new(model, history, &indices, options.max_steps_per_key).run() {
            KeyVerdict::Linearizable => {}
            KeyVerdict::OutOfBudget => unknown.push(key.clone()),
            KeyVerdict::NotLinearizable(explanation) => {
                return Verdict::NotLinearizable {
                    key: key.clone(),
                    explanation: format!("key {key:?}: {explanation}"),
                };
            }
        }
    }
    if unknown.is_empty() {
        Verdict::Linearizable
    } else {
        Verdict::Unknown { keys: unknown }
    }
}

enum KeyVerdict {
    Linearizable,
    NotLinearizable(String),
    OutOfBudget,
}

/// Index of the list's sentinels.
const HEAD: usize = 0;
const TAIL: usize = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Sentinel,
    /// The call of the operation with this local index.
    Call(usize),
    Return(usize),
}

/// The not yet linearized events in time order, unlinked and relinked in LIFO order.
struct EventList {
    events: Vec<Event>,
    prev: Vec<usize>,
    next: Vec<usize>,
}

impl EventList {
    fn new(sorted: Vec<Event>) -> Self {
        let mut events = vec![Event::Sentinel, Event::Sentinel];
        events.extend(sorted);
        let n = events.len();
        // Order: HEAD, 2, 3, ..., n-1, TAIL.
        let order: Vec<usize> = std::iter::once(HEAD).chain(2..n).chain(std::iter::once(TAIL)).collect();
        let mut prev = vec![HEAD; n];
        let mut next = vec![TAIL; n];
        for pair in order.windows(2) {
            next[pair[0]] = pair[1];
            prev[pair[1]] = pair[0];
        }
        EventList { events, prev, next }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    /// The operations that may be linearized next (calls before the first return), and the
    /// operation of that return.
    fn frontier(&self) -> (Vec<usize>, Option<usize>) {
        let mut calls = Vec::new();
        let mut e = self.next[HEAD];
        loop {
            match self.events[e] {
                Event::Call(op) => calls.push(op),
                Event::Return(op) => return (calls, Some(op)),
                Event::Sentinel => return (calls, None),
            }
            e = self.next[e];
        }
    }
}

/// Which bitset an operation's "linearized" bit lives in.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Completed(usize),
    Unknown(usize),
}

struct LocalOp<'h, I, O> {
    /// Index in the checked history, for explanations.
    index: usize,
    input: &'h I,
    /// `None` when the outcome is unknown.
    output: Option<&'h O>,
    slot: Slot,
    /// Completed, and never changes the state: linearized as soon as accepted.
    read_only: bool,
    /// Lookahead: the state id it may leave, and (completed ones) the state id it needs,
    /// each with its position in that state's list.
    produces: Option<(usize, usize)>,
    requires: Option<(usize, usize)>,
    /// The id (in [`SingledOut`]) of the state it singles out, if one.
    singles_out: Option<usize>,
    /// Lookahead: needs a state and always replaces it (a successful compare-and-swap): the
    /// state id.
    consumes: Option<usize>,
    invoke: u64,
    complete: Option<u64>,
    call: usize,
    ret: Option<usize>,
}

struct Bits {
    words: Vec<u64>,
}

impl Bits {
    fn new(len: usize) -> Self {
        Bits { words: vec![0; len.div_ceil(64)] }
    }
    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }
    /// A canonical short form: the number of leading all-ones words, then the words up to the
    /// last non-zero one. Linearized sets are nearly prefixes of the invoke order, so this is
    /// a word or two where the full set is one bit per operation.
    fn compact(&self) -> (usize, &[u64]) {
        let start = self.words.iter().position(|w| *w != u64::MAX).unwrap_or(self.words.len());
        let end = self.words.iter().rposition(|w| *w != 0).map_or(start, |last| (last + 1).max(start));
        (start, &self.words[start..end])
    }
    /// The words without trailing zeros.
    fn trimmed(&self) -> &[u64] {
        let end = self.words.iter().rposition(|w| *w != 0).map_or(0, |last| last + 1);
        &self.words[..end]
    }
}

/// `small`, a trimmed bitset, is a subset of `big`.
fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.len() <= big.len() && small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

/// splitmix64: a fixed pseudo-random 64-bit tag per completed operation, XORed into the
/// hash of the linearized set (Zobrist hashing), so the hash updates in O(1).
fn zobrist(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The explored configurations, in arenas: a few allocations in all rather than several per
/// configuration (the search of a violation can record millions).
struct Memo<S> {
    /// The first entry for each hash of a completed set. A hash map for speed (the key is
    /// already a uniform hash, so it is used as is); it is only looked up, never iterated,
    /// so its order cannot reach the output.
    #[allow(clippy::disallowed_types)]
    heads: std::collections::HashMap<u64, usize, std::hash::BuildHasherDefault<PassThrough>>,
    entries: Vec<MemoEntry<S>>,
    /// The bitset words of all entries.
    words: Vec<u64>,
}

/// An explored configuration: completed set (compact form), unknown set (trimmed), state.
struct MemoEntry<S> {
    state: MemoState<S>,
    /// The next entry with the same hash (`usize::MAX`: none).
    next: usize,
    /// Leading all-ones words of the completed set.
    completed_start: usize,
    /// Where the rest of the completed set, then the unknown set, sit in `Memo::words`.
    words_at: usize,
    completed_len: usize,
    unknown_len: usize,
}

impl<S: Eq + Clone> Memo<S> {
    fn new() -> Self {
        Memo { heads: Default::default(), entries: Vec::new(), words: Vec::new() }
    }

    /// Records the configuration (completed set `(start, completed)` in compact form, unknown
    /// set, state `Exact(state)` or of interchangeable `class`) unless an entry dominates it:
    /// same completed set and state, unknown set a subset. Whether it was recorded.
    fn record(
        &mut self,
        hash: u64,
        (start, completed): (usize, &[u64]),
        unknown: &[u64],
        state: &S,
        class: Option<u64>,
    ) -> bool {
        let head = self.heads.get(&hash).copied().unwrap_or(usize::MAX);
        let mut at = head;
        while let Some(seen) = self.entries.get(at) {
            let words = &self.words[seen.words_at..];
            let dominated = seen.completed_start == start
                && words[..seen.completed_len] == *completed
                && match &seen.state {
                    MemoState::Exact(seen) => class.is_none() && seen == state,
                    MemoState::Interchangeable(seen) => class == Some(*seen),
                }
                && is_subset(&words[seen.completed_len..][..seen.unknown_len], unknown);
            if dominated {
                return false;
            }
            at = seen.next;
        }
        self.entries.push(MemoEntry {
            state: class.map_or_else(|| MemoState::Exact(state.clone()), MemoState::Interchangeable),
            next: head,
            completed_start: start,
            words_at: self.words.len(),
            completed_len: completed.len(),
            unknown_len: unknown.len(),
        });
        self.words.extend_from_slice(completed);
        self.words.extend_from_slice(unknown);
        self.heads.insert(hash, self.entries.len() - 1);
        true
    }
}

/// A hasher for keys that are already uniform 64-bit hashes.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A state as the memo sees it.
enum MemoState<S> {
    Exact(S),
    /// Any state of this class that nothing left singles out.
    Interchangeable(u64),
}

/// For each state some operation singles out (see [`Model::distinguishes`]): how many
/// operations not linearized yet do. Unknown outcomes always count, linearized or not, so a
/// memo entry stays valid for the configurations it dominates.
struct SingledOut<S> {
    ids: BTreeMap<S, usize>,
    remaining: Vec<u32>,
}

/// The lookahead's view of each state some operation needs or may leave (by id).
struct Lookahead<S> {
    ids: BTreeMap<S, usize>,
    /// Per state: the operations that may leave it, by invoke time.
    producers: Vec<Timeline>,
    /// Per state: the completed operations that need it, by completion time.
    requirers: Vec<Timeline>,
    /// Per state: operations not linearized yet that may leave it, and completed ones that
    /// need it and replace it. Each of the latter needs its own production of the state (or
    /// the current one), so there can be at most one more than the former.
    producers_left: Vec<u32>,
    consumers_left: Vec<u32>,
    /// Completed operations that may change the state, by invoke time: (invoke, complete,
    /// state id they leave, local index). After any of them the state is the one it leaves.
    changers: Vec<(u64, u64, usize, usize)>,
}

/// Operations sorted by a time, and where the first one not linearized is (everything
/// before it is linearized; linearizing and undoing in LIFO order keeps it exact).
struct Timeline {
    entries: Vec<(u64, usize)>,
    first: usize,
}

impl Timeline {
    /// The earliest time among operations not linearized, `op` aside.
    fn earliest(&self, linearized: &[bool], op: usize) -> Option<(u64, usize)> {
        self.entries[self.first..].iter().copied().find(|&(_, other)| other != op && !linearized[other])
    }

    fn linearized(&mut self, position: usize, linearized: &[bool]) {
        if position == self.first {
            while self.entries.get(self.first).is_some_and(|&(_, op)| linearized[op]) {
                self.first += 1;
            }
        }
    }

    fn unlinearized(&mut self, position: usize) {
        self.first = self.first.min(position);
    }
}

/// A node of the depth-first search.
struct Frame<S> {
    /// The operation linearized to get here (`None` at the root).
    via: Option<usize>,
    state: S,
    phase: Phase<S>,
}

enum Phase<S> {
    /// Looking for a read-only operation the model accepts here: if there is one, it is the
    /// only child (any linearization can be reordered to put it first).
    ReadOnly,
    /// The read-only child was explored; nothing else to try.
    Forced,
    /// Trying completed operations that may change the state; the next event to look at.
    Completed { cursor: usize },
    /// Unknown operations that change the state, already recorded in the memo.
    Unknown { children: Vec<(usize, S)>, next: usize },
}

enum Advance<S> {
    Push(usize, S),
    Exhausted,
    OutOfBudget,
}

/// Why an operation could not go next, for the explanation.
enum Why {
    /// The model does not accept its output in this state.
    Rejected,
    /// Accepted, but afterwards this operation (local index) can never be accepted.
    Strands(usize),
    /// This operation (local index) needs a state, and every operation that may leave it
    /// (`None`: the initial state) is followed by an overwrite (the second) that completed
    /// before this one was invoked.
    Overwritten { needy: usize, overwrites: Vec<(Option<usize>, usize)> },
    /// Accepted, but afterwards more operations must each find this state and replace it
    /// than there are operations left that may produce it.
    Outnumbered { state: usize, consumers: u32, producers: u32 },
    /// Accepted, but leaves the state as it was (an unknown outcome: it may as well never
    /// have happened).
    NoChange,
    /// Accepted, but every continuation failed.
    Explored,
}

/// The deepest configuration the search could not extend, for the explanation.
struct DeadEnd<S> {
    completed_linearized: usize,
    state: S,
    prefix_len: usize,
    /// The last operations of the prefix (local indices), oldest first.
    prefix_tail: Vec<usize>,
    /// The pending operation that returns first: it must go before anything invoked later.
    blocking: Option<usize>,
    /// Every operation that could have gone next, and why it did not.
    tried: Vec<(usize, Why)>,
}

/// The search over one key's operations.
struct Search<'m, 'h, M: Model, K> {
    model: &'m M,
    history: &'h [Operation<K, M::Input, M::Output>],
    ops: Vec<LocalOp<'h, M::Input, M::Output>>,
    list: EventList,
    completed_total: usize,
    completed_left: usize,
    completed: Bits,
    completed_hash: u64,
    unknown: Bits,
    /// Per operation (local index): whether it is in the current linearization.
    linearized: Vec<bool>,
    lookahead: Option<Lookahead<M::State>>,
    singled_out: Option<SingledOut<M::State>>,
    memo: Memo<M::State>,
    steps: u64,
    max_steps: u64,
    deepest: Option<DeadEnd<M::State>>,
}

impl<'m, 'h, M: Model, K> Search<'m, 'h, M, K> {
    fn new(
        model: &'m M,
        history: &'h [Operation<K, M::Input, M::Output>],
        indices: &[usize],
        max_steps: u64,
    ) -> Self {
        // An operation whose outcome is unknown and that cannot change the state constrains
        // nothing: it may have happened anywhere, or not at all.
        let mut indices: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| {
                history[i].complete.is_some() || model.effect(&history[i].input, None) != Effect::ReadOnly
            })
            .collect();
        // Invoke order, so completed bit numbers follow time and linearized sets compact well.
        indices.sort_by_key(|&i| (history[i].invoke, i));
        let mut ops = Vec::with_capacity(indices.len());
        let mut effects = Vec::with_capacity(indices.len());
        // (time, calls before returns at equal times, local index): an operation returning at
        // the millisecond another is invoked counts as concurrent with it.
        let mut timed = Vec::with_capacity(2 * indices.len());
        let (mut completed_total, mut unknown_total) = (0, 0);
        for (local, &index) in indices.iter().enumerate() {
            let op = &history[index];
            let output = op.complete.map(|_| &op.output);
            let slot = match op.complete {
                Some(complete) => {
                    timed.push((complete, 1, local, Event::Return(local)));
                    completed_total += 1;
                    Slot::Completed(completed_total - 1)
                }
                None => {
                    unknown_total += 1;
                    Slot::Unknown(unknown_total - 1)
                }
            };
            timed.push((op.invoke, 0, local, Event::Call(local)));
            let effect = model.effect(&op.input, output);
            let read_only = output.is_some() && effect == Effect::ReadOnly;
            let required = output.and_then(|output| model.required_state(&op.input, output));
            effects.push((effect, required));
            ops.push(LocalOp {
                index,
                input: &op.input,
                output,
                slot,
                read_only,
                produces: None,
                requires: None,
                consumes: None,
                singles_out: None,
                invoke: op.invoke,
                complete: op.complete,
                call: 0,
                ret: None,
            });
        }
        timed.sort_by_key(|&(time, order, local, _)| (time, order, local));
        for (position, &(_, _, local, event)) in timed.iter().enumerate() {
            match event {
                Event::Call(_) => ops[local].call = position + 2,
                Event::Return(_) => ops[local].ret = Some(position + 2),
                Event::Sentinel => unreachable!(),
            }
        }
        let lookahead = Lookahead::new(&mut ops, effects);
        let singled_out = SingledOut::new(model, &mut ops);
        let list = EventList::new(timed.into_iter().map(|(_, _, _, event)| event).collect());
        Search {
            model,
            history,
            ops,
            list,
            completed_total,
            completed_left: completed_total,
            completed: Bits::new(completed_total),
            completed_hash: 0,
            unknown: Bits::new(unknown_total),
            linearized: vec![false; indices.len()],
            lookahead,
            singled_out,
            memo: Memo::new(),
            steps: 0,
            max_steps,
            deepest: None,
        }
    }

    fn run(mut self) -> KeyVerdict {
        if self.completed_left == 0 {
            return KeyVerdict::Linearizable;
        }
        let root = self.model.init();
        if let Some(why) = self.impossible_from_start(&root) {
            return KeyVerdict::NotLinearizable(self.explain_impossible(&why));
        }
        let mut stack = vec![Frame { via: None, state: root, phase: Phase::ReadOnly }];
        while let Some(top) = stack.last_mut() {
            match self.advance(top) {
                Advance::Push(op, state) => {
                    self.linearize(op);
                    if self.completed_left == 0 {
                        return KeyVerdict::Linearizable;
                    }
                    stack.push(Frame { via: Some(op), state, phase: Phase::ReadOnly });
                }
                Advance::Exhausted => {
                    let frame = stack.pop().expect("the loop holds a top frame");
                    self.record_dead_end(&stack, &frame);
                    if let Some(op) = frame.via {
                        self.unlinearize(op);
                    }
                }
                Advance::OutOfBudget => return KeyVerdict::OutOfBudget,
            }
        }
        KeyVerdict::NotLinearizable(self.explain())
    }

    /// The next child of `frame` to explore, if any is left.
    fn advance(&mut self, frame: &mut Frame<M::State>) -> Advance<M::State> {
        loop {
            match &mut frame.phase {
                Phase::ReadOnly => {
                    let Some(forced) = self.read_only_child(&frame.state) else {
                        return Advance::OutOfBudget;
                    };
                    match forced {
                        Some(op) => {
                            frame.phase = Phase::Forced;
                            // Already explored (and failed) means this configuration fails too.
                            if self.visit(op, &frame.state) {
                                return Advance::Push(op, frame.state.clone());
                            }
                        }
                        None => frame.phase = Phase::Completed { cursor: self.list.next[HEAD] },
                    }
                }
                Phase::Forced => return Advance::Exhausted,
                Phase::Completed { cursor } => {
                    let event = *cursor;
                    let Event::Call(op) = self.list.events[event] else {
                        match self.unknown_children(&frame.state) {
                            Some(children) => frame.phase = Phase::Unknown { children, next: 0 },
                            None => return Advance::OutOfBudget,
                        }
                        continue;
                    };
                    *cursor = self.list.next[event];
                    // Unknown ones come later; read-only ones were all rejected here already.
                    let LocalOp { input, output, slot, read_only, .. } = self.ops[op];
                    if read_only || matches!(slot, Slot::Unknown(_)) {
                        continue;
                    }
                    let Some(next) = self.try_step(&frame.state, input, output) else {
                        return Advance::OutOfBudget;
                    };
                    if let Some(state) = next {
                        if self.strands(op, &frame.state, &state).is_none() && self.visit(op, &state) {
                            return Advance::Push(op, state);
                        }
                    }
                }
                Phase::Unknown { children, next } => {
                    let Some((op, state)) = children.get(*next).cloned() else {
                        return Advance::Exhausted;
                    };
                    *next += 1;
                    return Advance::Push(op, state);
                }
            }
        }
    }

    /// The first read-only operation the model accepts now; `None` if out of budget.
    #[allow(clippy::option_option)] // Outer: budget left; inner: whether there is one.
    fn read_only_child(&mut self, state: &M::State) -> Option<Option<usize>> {
        let mut event = self.list.next[HEAD];
        while let Event::Call(op) = self.list.events[event] {
            event = self.list.next[event];
            let LocalOp { input, output, read_only, .. } = self.ops[op];
            if !read_only {
                continue;
            }
            if let Some(next) = self.try_step(state, input, output)? {
                debug_assert!(next == *state, "{} changed the state: not read-only", self.describe(op));
                return Some(Some(op));
            }
        }
        Some(None)
    }

    /// The unknown operations that may take effect now and change the state, each recorded
    /// in the memo before any is explored (see the module header); `None` if out of budget.
    ///
    /// Those after which the first operation to return could take effect come first: when a
    /// read observed a write whose outcome is unknown, that write is tried before the others.
    /// The order only changes how soon a linearization is found, not the verdict.
    fn unknown_children(&mut self, state: &M::State) -> Option<Vec<(usize, M::State)>> {
        let (calls, blocking) = self.list.frontier();
        let mut enabling = Vec::new();
        let mut others = Vec::new();
        for op in calls {
            let LocalOp { input, output, slot, .. } = self.ops[op];
            if let Slot::Completed(_) = slot {
                continue;
            }
            let Some(next) = self.try_step(state, input, output)? else { continue };
            if next == *state || self.strands(op, state, &next).is_some() || !self.visit(op, &next) {
                continue;
            }
            let enables = match blocking {
                Some(b) => self.try_step(&next, self.ops[b].input, self.ops[b].output)?.is_some(),
                None => false,
            };
            if enables { &mut enabling } else { &mut others }.push((op, next));
        }
        enabling.append(&mut others);
        Some(enabling)
    }

    /// One model step, counted against the budget; `None` when the budget is spent.
    #[allow(clippy::option_option)] // Outer: budget left; inner: the model's answer.
    fn try_step(
        &mut self,
        state: &M::State,
        input: &M::Input,
        output: Option<&M::Output>,
    ) -> Option<Option<M::State>> {
        if self.steps >= self.max_steps {
            return None;
        }
        self.steps += 1;
        Some(self.model.step(state, input, output))
    }

    /// Lookahead: whether linearizing `op`, taking the state from `before` to `after`, leaves
    /// a completed operation that can no longer be accepted (a [`Why::Strands`] or
    /// [`Why::Outnumbered`]).
    ///
    /// A completed operation needing state r (not `after`) must be preceded by an operation
    /// leaving r, and one invoked after it completed cannot precede it. So r is stranded when
    /// the earliest completion among those needing it comes before the earliest invocation
    /// among those that may leave it (or none is left). Only the state just left, and the one
    /// `op` may leave, can have become stranded or outnumbered here: the configuration before
    /// was not.
    fn strands(&self, op: usize, before: &M::State, after: &M::State) -> Option<Why> {
        let lookahead = self.lookahead.as_ref()?;
        let after_id = lookahead.ids.get(after).copied();
        let left = if before == after { None } else { lookahead.ids.get(before).copied() };
        let produced = self.ops[op].produces.map(|(id, _)| id);
        left.into_iter().chain(produced).find_map(|id| {
            let current = after_id == Some(id);
            let stranded = if current { None } else { lookahead.stranded(id, &self.linearized, op) };
            let LocalOp { consumes, produces, .. } = self.ops[op];
            stranded.or_else(|| lookahead.outnumbered(id, (consumes, produces.map(|(p, _)| p)), current))
        })
    }

    /// The lookahead's verdict before anything is linearized: a completed operation needing a
    /// state that is not `init` and that nothing invoked before it completed may leave, or a
    /// state more operations consume than produce. The history is then not linearizable,
    /// whatever the order.
    fn impossible_from_start(&self, init: &M::State) -> Option<Why> {
        let lookahead = self.lookahead.as_ref()?;
        let init_id = lookahead.ids.get(init).copied();
        if let Some(overwritten) = self.overwritten(lookahead, init_id) {
            return Some(overwritten);
        }
        (0..lookahead.ids.len()).find_map(|id| {
            let current = Some(id) == init_id;
            let stranded = if current { None } else { lookahead.stranded(id, &self.linearized, usize::MAX) };
            stranded.or_else(|| lookahead.outnumbered(id, (None, None), current))
        })
    }

    /// The stale-read rule: a completed operation R needing state v cannot be linearized if
    /// every operation P that may leave v (and the initial state, if it is v) is followed by
    /// a completed operation O leaving another state, with P completed before O was invoked
    /// and O completed before R was invoked. The last change before R must leave v, and O
    /// would come after it and before R.
    fn overwritten(&self, lookahead: &Lookahead<M::State>, init_id: Option<usize>) -> Option<Why> {
        for (id, requirers) in lookahead.requirers.iter().enumerate() {
            'needy: for &(complete, needy) in &requirers.entries {
                let invoke = self.ops[needy].invoke;
                let mut overwrites = Vec::new();
                // The latest writers are the likeliest not to be overwritten: try them first.
                for &(producer_invoke, producer) in lookahead.producers[id].entries.iter().rev() {
                    if producer == needy || producer_invoke > complete {
                        continue;
                    }
                    // A producer whose outcome is unknown may take effect arbitrarily late.
                    let Some(producer_complete) = self.ops[producer].complete else { continue 'needy };
                    match lookahead.overwrite_between(Some(producer_complete), invoke, id, needy, producer) {
                        Some(overwrite) => overwrites.push((Some(producer), overwrite)),
                        None => continue 'needy,
                    }
                }
                if init_id == Some(id) {
                    match lookahead.overwrite_between(None, invoke, id, needy, needy) {
                        Some(overwrite) => overwrites.push((None, overwrite)),
                        None => continue 'needy,
                    }
                }
                if overwrites.is_empty() {
                    return Some(Why::Strands(needy));
                }
                overwrites.reverse();
                return Some(Why::Overwritten { needy, overwrites });
            }
        }
        None
    }

    /// Records the configuration "current set plus `op`, in `state`" as explored; false if
    /// it, or a configuration dominating it, already was.
    fn visit(&mut self, op: usize, state: &M::State) -> bool {
        let class = self.interchangeable(op, state);
        self.set_linearized(op);
        let recorded = self.memo.record(
            self.completed_hash,
            self.completed.compact(),
            self.unknown.trimmed(),
            state,
            class,
        );
        self.clear_linearized(op);
        recorded
    }

    /// The class of `state` if, once `op` is linearized, nothing left singles it out.
    fn interchangeable(&self, op: usize, state: &M::State) -> Option<u64> {
        let singled_out = self.singled_out.as_ref()?;
        let class = self.model.interchangeable_class(state)?;
        let Some(&id) = singled_out.ids.get(state) else { return Some(class) };
        let LocalOp { singles_out, slot, .. } = self.ops[op];
        let leaving = u32::from(singles_out == Some(id) && matches!(slot, Slot::Completed(_)));
        (singled_out.remaining[id] == leaving).then_some(class)
    }

    fn set_linearized(&mut self, op: usize) {
        match self.ops[op].slot {
            Slot::Completed(bit) => {
                self.completed.set(bit);
                self.completed_hash ^= zobrist(bit);
            }
            Slot::Unknown(bit) => self.unknown.set(bit),
        }
    }

    fn clear_linearized(&mut self, op: usize) {
        match self.ops[op].slot {
            Slot::Completed(bit) => {
                self.completed.clear(bit);
                self.completed_hash ^= zobrist(bit);
            }
            Slot::Unknown(bit) => self.unknown.clear(bit),
        }
    }

    fn linearize(&mut self, op: usize) {
        self.set_linearized(op);
        self.list.unlink(self.ops[op].call);
        if let Some(ret) = self.ops[op].ret {
            self.list.unlink(ret);
            self.completed_left -= 1;
        }
        self.linearized[op] = true;
        if let Some(lookahead) = &mut self.lookahead {
            lookahead.linearized(&self.ops[op], &self.linearized);
        }
        if let (Some(singled_out), Some(id), Slot::Completed(_)) =
            (&mut self.singled_out, self.ops[op].singles_out, self.ops[op].slot)
        {
            singled_out.remaining[id] -= 1;
        }
    }

    fn unlinearize(&mut self, op: usize) {
        self.linearized[op] = false;
        if let Some(lookahead) = &mut self.lookahead {
            lookahead.unlinearized(&self.ops[op]);
        }
        if let (Some(singled_out), Some(id), Slot::Completed(_)) =
            (&mut self.singled_out, self.ops[op].singles_out, self.ops[op].slot)
        {
            singled_out.remaining[id] += 1;
        }
        if let Some(ret) = self.ops[op].ret {
            self.list.relink(ret);
            self.completed_left += 1;
        }
        self.list.relink(self.ops[op].call);
        self.clear_linearized(op);
    }

    /// Keeps the deepest configuration found (most completed operations linearized), with
    /// why each operation that could have gone next did not.
    fn record_dead_end(&mut self, stack: &[Frame<M::State>], frame: &Frame<M::State>) {
        let completed_linearized = self.completed_total - self.completed_left;
        if self.deepest.as_ref().is_some_and(|d| d.completed_linearized >= completed_linearized) {
            return;
        }
        let prefix: Vec<usize> = stack.iter().chain(std::iter::once(frame)).filter_map(|f| f.via).collect();
        let (candidates, blocking) = self.list.frontier();
        // Not counted against the budget: at most one record per completed operation.
        let tried = candidates
            .into_iter()
            .map(|op| {
                let LocalOp { input, output, .. } = self.ops[op];
                let why = match self.model.step(&frame.state, input, output) {
                    None => Why::Rejected,
                    Some(next) => match self.strands(op, &frame.state, &next) {
                        Some(why) => why,
                        None if output.is_none() && next == frame.state => Why::NoChange,
                        None => Why::Explored,
                    },
                };
                (op, why)
            })
            .collect();
        self.deepest = Some(DeadEnd {
            completed_linearized,
            state: frame.state.clone(),
            prefix_len: prefix.len(),
            prefix_tail: prefix[prefix.len().saturating_sub(EXPLAIN_PREFIX_OPS)..].to_vec(),
            blocking,
            tried,
        });
    }

    fn explain_impossible(&self, why: &Why) -> String {
        match why {
            Why::Strands(needy) => format!(
                "no linearization exists. This operation needs the value {}:\n  {}\nbut nothing on \
                 this key invoked before it completed writes it.",
                self.required(*needy),
                self.describe(*needy)
            ),
            Why::Outnumbered { state, consumers, producers } => {
                let lookahead = self.lookahead.as_ref().expect("a lookahead verdict");
                let value = self.describe_state_id(*state);
                let mut text = format!(
                    "no linearization exists. These {consumers} operations each need the value {value} \
                     and replace it:"
                );
                for op in (0..self.ops.len()).filter(|&op| self.ops[op].consumes == Some(*state)) {
                    text += &format!("\n  {}", self.describe(op));
                }
                let initial = if lookahead.ids.get(&self.model.init()) == Some(state) {
                    " besides the initial value"
                } else {
                    ""
                };
                let operations = if *producers == 1 { "operation" } else { "operations" };
                text += &format!("\nbut only {producers} {operations} on this key could leave it{initial}");
                let writers = &lookahead.producers[*state].entries;
                text += if writers.is_empty() { "." } else { ":" };
                for &(_, op) in writers.iter().take(EXPLAIN_PENDING_OPS) {
                    text += &format!("\n  {}", self.describe(op));
                }
                text
            }
            Why::Overwritten { needy, overwrites } => {
                let mut text = format!(
                    "no linearization exists. This operation needs the value {}:\n  {}\nbut \
                     everything that could have left that value was overwritten before it was invoked:",
                    self.required(*needy),
                    self.describe(*needy)
                );
                for (producer, overwrite) in overwrites.iter().take(EXPLAIN_PENDING_OPS) {
                    let producer = producer.map_or("the initial value".to_string(), |p| self.describe(p));
                    text += &format!("\n  {producer}\n    then {}", self.describe(*overwrite));
                }
                if overwrites.len() > EXPLAIN_PENDING_OPS {
                    text += &format!("\n  ... and {} more", overwrites.len() - EXPLAIN_PENDING_OPS);
                }
                text
            }
            Why::Rejected | Why::NoChange | Why::Explored => unreachable!("not a lookahead verdict"),
        }
    }

    fn explain(&self) -> String {
        let dead_end = self.deepest.as_ref().expect("a failed search recorded its root at least");
        let state = self.model.describe_state(&dead_end.state);
        let mut text = format!(
            "no linearization exists. The longest linearizable prefix found orders {} of {} \
             completed operations and leaves the value {state}",
            dead_end.completed_linearized, self.completed_total
        );
        let tried = |op: usize| dead_end.tried.iter().find(|(o, _)| *o == op).map(|(_, why)| why);
        if let Some(blocking) = dead_end.blocking {
            let complete = self.history[self.ops[blocking].index].complete.expect("it has a return event");
            let why = tried(blocking).expect("a returning operation was called before");
            text += &format!(
                "; then op {} must take effect before it completed at {complete} ms, and cannot:\n  {}",
                self.ops[blocking].index,
                self.describe_why(blocking, why, &state)
            );
        }
        text += &format!("\nlast operations of that prefix (oldest first; {} in all):", dead_end.prefix_len);
        if dead_end.prefix_tail.is_empty() {
            text += "\n  (none)";
        }
        for &op in &dead_end.prefix_tail {
            text += &format!("\n  {}", self.describe(op));
        }
        let mut others: Vec<&(usize, Why)> =
            dead_end.tried.iter().filter(|(op, _)| Some(*op) != dead_end.blocking).collect();
        // Completed operations first: unknown ones pile up and say less.
        others.sort_by_key(|(op, _)| self.ops[*op].output.is_none());
        text += "\nother operations that could have gone next:";
        if others.is_empty() {
            text += "\n  (none)";
        }
        for (op, why) in others.iter().take(EXPLAIN_PENDING_OPS) {
            text += &format!("\n  {}", self.describe_why(*op, why, &state));
        }
        if others.len() > EXPLAIN_PENDING_OPS {
            text += &format!("\n  ... and {} more", others.len() - EXPLAIN_PENDING_OPS);
        }
        text
    }

    /// An operation, and why it could not go next when the value was `state`.
    fn describe_why(&self, op: usize, why: &Why, state: &str) -> String {
        let why = match why {
            Why::Rejected => format!("impossible when the value is {state}"),
            Why::Overwritten { .. } => unreachable!("only a verdict from the start"),
            Why::Strands(needy) => format!(
                "possible, but then nothing left writes {} in time for {}",
                self.required(*needy),
                self.describe(*needy)
            ),
            Why::Outnumbered { state, consumers, producers } => format!(
                "possible, but then {consumers} operations must each find the value {} and replace \
                 it, and only {producers} left could write it",
                self.describe_state_id(*state)
            ),
            Why::NoChange => "would change nothing".to_string(),
            Why::Explored => "possible, but nothing linearizable follows".to_string(),
        };
        format!("{} [{why}]", self.describe(op))
    }

    fn describe_state_id(&self, id: usize) -> String {
        let lookahead = self.lookahead.as_ref().expect("state ids come from the lookahead");
        let state = lookahead.ids.iter().find(|&(_, &i)| i == id).expect("a numbered state").0;
        self.model.describe_state(state)
    }

    /// The state a completed operation with a lookahead requirement needs, described.
    fn required(&self, op: usize) -> String {
        let LocalOp { input, output, .. } = self.ops[op];
        let output = output.expect("only completed operations have requirements");
        let state = self.model.required_state(input, output).expect("it has a requirement");
        self.model.describe_state(&state)
    }

    fn describe(&self, op: usize) -> String {
        let index = self.ops[op].index;
        let Operation { client, input, output, invoke, complete, .. } = &self.history[index];
        match complete {
            Some(complete) => format!(
                "op {index} (client {client}): {input} -> {output}, invoked at {invoke} ms, \
                 completed at {complete} ms"
            ),
            None => format!("op {index} (client {client}): {input}, invoked at {invoke} ms, outcome unknown"),
        }
    }
}

impl<S: Ord> SingledOut<S> {
    /// `None` (no merging) if some operation may single out anything.
    fn new<M: Model<State = S>>(model: &M, ops: &mut [LocalOp<'_, M::Input, M::Output>]) -> Option<Self> {
        let mut singled_out = SingledOut { ids: BTreeMap::new(), remaining: Vec::new() };
        for op in ops.iter_mut() {
            match model.distinguishes(op.input, op.output) {
                Distinguishes::Nothing => {}
                Distinguishes::One(state) => {
                    let next = singled_out.ids.len();
                    let id = *singled_out.ids.entry(state).or_insert(next);
                    if id == next {
                        singled_out.remaining.push(0);
                    }
                    singled_out.remaining[id] += 1;
                    op.singles_out = Some(id);
                }
                Distinguishes::Anything => return None,
            }
        }
        Some(singled_out)
    }
}

impl<S: Ord + Clone> Lookahead<S> {
    /// Numbers the states operations need or leave and sorts their timelines; `None` (no
    /// lookahead) if some operation's effect is not described, or nothing needs a state.
    fn new<I, O>(ops: &mut [LocalOp<'_, I, O>], effects: Vec<(Effect<S>, Option<S>)>) -> Option<Self> {
        if effects.iter().any(|(effect, _)| *effect == Effect::Other)
            || effects.iter().all(|(_, required)| required.is_none())
        {
            return None;
        }
        let mut lookahead = Lookahead {
            ids: BTreeMap::new(),
            producers: Vec::new(),
            requirers: Vec::new(),
            producers_left: Vec::new(),
            consumers_left: Vec::new(),
            changers: Vec::new(),
        };
        for (local, (effect, required)) in effects.into_iter().enumerate() {
            let required = required.filter(|_| ops[local].complete.is_some());
            if let (Some(needed), Effect::Sets(left)) = (&required, &effect) {
                if needed != left {
                    let id = lookahead.id(needed.clone());
                    ops[local].consumes = Some(id);
                    lookahead.consumers_left[id] += 1;
                }
            }
            if let Effect::Sets(state) = effect {
                let id = lookahead.id(state);
                lookahead.producers[id].entries.push((ops[local].invoke, local));
                lookahead.producers_left[id] += 1;
                if let Some(complete) = ops[local].complete {
                    lookahead.changers.push((ops[local].invoke, complete, id, local));
                }
            }
            if let (Some(state), Some(complete)) = (required, ops[local].complete) {
                let id = lookahead.id(state);
                lookahead.requirers[id].entries.push((complete, local));
            }
        }
        lookahead.changers.sort_unstable();
        for (id, timeline) in lookahead.producers.iter_mut().enumerate() {
            timeline.entries.sort_unstable();
            for (position, &(_, local)) in timeline.entries.iter().enumerate() {
                ops[local].produces = Some((id, position));
            }
        }
        for (id, timeline) in lookahead.requirers.iter_mut().enumerate() {
            timeline.entries.sort_unstable();
            for (position, &(_, local)) in timeline.entries.iter().enumerate() {
                ops[local].requires = Some((id, position));
            }
        }
        Some(lookahead)
    }

    fn id(&mut self, state: S) -> usize {
        let next = self.ids.len();
        let id = *self.ids.entry(state).or_insert(next);
        if id == next {
            self.producers.push(Timeline { entries: Vec::new(), first: 0 });
            self.requirers.push(Timeline { entries: Vec::new(), first: 0 });
            self.producers_left.push(0);
            self.consumers_left.push(0);
        }
        id
    }

    /// The operation needing state `id` that can no longer get it, `op` counted as
    /// linearized; see [`Search::strands`].
    fn stranded(&self, id: usize, linearized: &[bool], op: usize) -> Option<Why> {
        let (deadline, needy) = self.requirers[id].earliest(linearized, op)?;
        match self.producers[id].earliest(linearized, op) {
            Some((invoke, _)) if invoke <= deadline => None,
            _ => Some(Why::Strands(needy)),
        }
    }

    /// A completed operation that leaves a state other than `id`, invoked after `after` (if
    /// any) and completed before `before`: it falls between the two in every linearization.
    /// `needy` and `producer` do not count.
    fn overwrite_between(
        &self,
        after: Option<u64>,
        before: u64,
        id: usize,
        needy: usize,
        producer: usize,
    ) -> Option<usize> {
        let start = after.map_or(0, |after| self.changers.partition_point(|&(invoke, ..)| invoke <= after));
        self.changers[start..]
            .iter()
            .take_while(|&&(invoke, ..)| invoke < before)
            .find(|&&(_, complete, leaves, op)| {
                complete < before && leaves != id && op != needy && op != producer
            })
            .map(|&(.., op)| op)
    }

    /// Whether, once the operation that consumes and produces the states `linearizing`
    /// (ids) is linearized, more operations must consume state `id` than there are producers
    /// of it left (plus one if it is the `current` state).
    fn outnumbered(
        &self,
        id: usize,
        linearizing: (Option<usize>, Option<usize>),
        current: bool,
    ) -> Option<Why> {
        let (consumed, produced) = linearizing;
        let consumers = self.consumers_left[id] - u32::from(consumed == Some(id));
        let producers = self.producers_left[id] - u32::from(produced == Some(id));
        (consumers > producers + u32::from(current)).then_some(Why::Outnumbered {
            state: id,
            consumers,
            producers,
        })
    }

    fn linearized<I, O>(&mut self, op: &LocalOp<'_, I, O>, linearized: &[bool]) {
        if let Some((id, position)) = op.produces {
            self.producers[id].linearized(position, linearized);
            self.producers_left[id] -= 1;
        }
        if let Some(id) = op.consumes {
            self.consumers_left[id] -= 1;
        }
        if let Some((id, position)) = op.requires {
            self.requirers[id].linearized(position, linearized);
        }
    }

    fn unlinearized<I, O>(&mut self, op: &LocalOp<'_, I, O>) {
        if let Some((id, position)) = op.produces {
            self.producers[id].unlinearized(position);
            self.producers_left[id] += 1;
        }
        if let Some(id) = op.consumes {
            self.consumers_left[id] += 1;
        }
        if let Some((id, position)) = op.requires {
            self.requirers[id].unlinearized(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    type Op = KvOperation<u64>;

    fn kv(client: u64, input: Input<u64>, output: Output<u64>, invoke: u64, complete: u64) -> Op {
        Operation { client, key: "x".to_string(), input, output, invoke, complete: Some(complete) }
    }
    fn write(client: u64, value: u64, invoke: u64, complete: u64) -> Op {
        kv(client, Input::Write(value), Output::Write, invoke, complete)
    }
    fn read(client: u64, seen: Option<u64>, invoke: u64, complete: u64) -> Op {
        kv(client, Input::Read, Output::Read(seen), invoke, complete)
    }
    fn cas(client: u64, expected: Option<u64>, new: u64, swapped: bool, invoke: u64, complete: u64) -> Op {
        kv(client, Input::Cas { expected, new }, Output::Cas(swapped), invoke, complete)
    }
    fn delete(client: u64, existed: bool, invoke: u64, complete: u64) -> Op {
        kv(client, Input::Delete, Output::Delete(existed), invoke, complete)
    }
    /// The same request, its response never seen.
    fn lost(op: Op) -> Op {
        Operation { complete: None, ..op }
    }
    fn on(key: &str, op: Op) -> Op {
        Operation { key: key.to_string(), ..op }
    }

    fn verdict(history: &[Op]) -> Verdict<String> {
        check(&KvRegister::new(), history, &CheckOptions::default())
    }

    /// The register without its descriptions ([`Model::effect`], [`Model::required_state`],
    /// [`Model::distinguishes`], [`Model::interchangeable_class`]): the plain search with the
    /// unknown-outcome handling; no read-only forcing, lookahead, rules or merged states.
    struct Plain;

    impl Model for Plain {
        type Input = Input<u64>;
        type Output = Output<u64>;
        type State = Option<u64>;

        fn init(&self) -> Option<u64> {
            None
        }
        fn step(
            &self,
            state: &Option<u64>,
            input: &Input<u64>,
            output: Option<&Output<u64>>,
        ) -> Option<Option<u64>> {
            KvRegister::new().step(state, input, output)
        }
    }
    /// Linearizable, found both with the register's reductions and by the plain search.
    fn assert_linearizable(history: &[Op]) {
        assert_eq!(verdict(history), Verdict::Linearizable, "{history:#?}");
        assert_eq!(check(&Plain, history, &CheckOptions::default()), Verdict::Linearizable, "plain search");
    }
    /// A violation on key "x", found both ways; the explanation the register's check gives.
    fn assert_violation(history: &[Op]) -> String {
        let plain = check(&Plain, history, &CheckOptions::default());
        assert!(matches!(plain, Verdict::NotLinearizable { .. }), "plain search: {plain:?}");
        match verdict(history) {
            Verdict::NotLinearizable { key, explanation } if key == "x" => explanation,
            other => panic!("expected a violation on key \"x\", got {other:?} for {history:#?}"),
        }
    }

    fn sequential() -> Vec<Op> {
        vec![
            read(1, None, 0, 1),
            write(1, 1, 2, 3),
            read(2, Some(1), 4, 5),
            cas(1, Some(1), 2, true, 6, 7),
            cas(2, Some(1), 3, false, 8, 9),
            read(3, Some(2), 10, 11),
            delete(1, true, 12, 13),
            delete(2, false, 14, 15),
            read(2, None, 16, 17),
            cas(3, None, 4, true, 18, 19),
            cas(1, None, 5, false, 20, 21),
            read(1, Some(4), 22, 23),
        ]
    }

    #[test]
    fn sequential_history_is_linearizable() {
        assert_linearizable(&sequential());
        assert_linearizable(&[]);
    }

    /// Every single wrong answer in a sequential history is caught (a write has no wrong
    /// answer to give). The explanation names the operation that cannot be placed, which is
    /// not always the one changed: a compare-and-swap turned into a failure leaves a later
    /// read of its value with no writer.
    #[test]
    fn any_wrong_answer_in_a_sequential_history_is_caught() {
        for i in 0..sequential().len() {
            let mut history = sequential();
            history[i].output = match &history[i].output {
                Output::Read(seen) => Output::Read(if seen.is_some() { None } else { Some(7) }),
                Output::Cas(swapped) => Output::Cas(!swapped),
                Output::Delete(existed) => Output::Delete(!existed),
                Output::Write => continue,
            };
            let explanation = assert_violation(&history);
            let named = match i {
                3 => 5,  // cas 1 -> 2 failed: nothing writes the 2 read by op 5
                9 => 11, // create 4 failed: nothing writes the 4 read by op 11
                _ => i,
            };
            assert!(explanation.contains(&format!("\n  op {named} (")), "op {i}: {explanation}");
        }
    }

    /// Only order: write 2, read 2, write 1, read 1, read 1 — write 1 was invoked first and
    /// completed last, so neither invoke nor completion order works.
    #[test]
    fn concurrent_history_linearizable_only_in_a_non_obvious_order() {
        let history = vec![
            write(0, 1, 0, 50),
            write(1, 2, 10, 20),
            read(2, Some(2), 12, 18),
            read(3, Some(1), 30, 40),
            read(2, Some(1), 45, 60),
        ];
        assert_linearizable(&history);
        // Once 1 is read after write 2 completed, 2 cannot come back.
        let mut flipped = history.clone();
        flipped[4].output = Output::Read(Some(2));
        assert_violation(&flipped);
    }

    #[test]
    fn stale_read_after_a_completed_write_is_not_linearizable() {
        let history = vec![write(1, 1, 0, 10), write(2, 2, 20, 30), read(3, Some(1), 40, 50)];
        let explanation = assert_violation(&history);
        assert_eq!(
            explanation,
            "key \"x\": no linearization exists. This operation needs the value 1:\n  \
             op 2 (client 3): read -> 1, invoked at 40 ms, completed at 50 ms\n\
             but everything that could have left that value was overwritten before it was invoked:\n  \
             op 0 (client 1): write 1 -> ok, invoked at 0 ms, completed at 10 ms\n    \
             then op 1 (client 2): write 2 -> ok, invoked at 20 ms, completed at 30 ms"
        );
        // The same read while the second write is in flight may see either value.
        let mut concurrent = history;
        concurrent[2] = read(3, Some(1), 25, 35);
        assert_linearizable(&concurrent);
    }

    /// When no rule shows it up front, the explanation is the search's deepest dead end.
    #[test]
    fn explanation_of_a_search_shows_the_longest_prefix() {
        let history =
            vec![write(1, 1, 0, 10), write(2, 2, 5, 15), read(3, Some(2), 20, 25), read(3, Some(1), 30, 35)];
        assert_eq!(
            assert_violation(&history),
            "key \"x\": no linearization exists. The longest linearizable prefix found orders 1 of 4 \
             completed operations and leaves the value 1; then op 1 must take effect before it \
             completed at 15 ms, and cannot:\n  \
             op 1 (client 2): write 2 -> ok, invoked at 5 ms, completed at 15 ms [possible, but then \
             nothing left writes 1 in time for op 3 (client 3): read -> 1, invoked at 30 ms, completed \
             at 35 ms]\n\
             last operations of that prefix (oldest first; 1 in all):\n  \
             op 0 (client 1): write 1 -> ok, invoked at 0 ms, completed at 10 ms\n\
             other operations that could have gone next:\n  (none)"
        );
    }

    #[test]
    fn explanation_of_a_lost_update_lists_the_swaps() {
        let history =
            vec![write(1, 0, 0, 5), cas(1, Some(0), 1, true, 10, 20), cas(2, Some(0), 2, true, 10, 20)];
        assert_eq!(
            assert_violation(&history),
            "key \"x\": no linearization exists. These 2 operations each need the value 0 and replace \
             it:\n  \
             op 1 (client 1): cas 0 -> 1 -> ok, invoked at 10 ms, completed at 20 ms\n  \
             op 2 (client 2): cas 0 -> 2 -> ok, invoked at 10 ms, completed at 20 ms\n\
             but only 1 operation on this key could leave it:\n  \
             op 0 (client 1): write 0 -> ok, invoked at 0 ms, completed at 5 ms"
        );
    }

    #[test]
    fn lost_write_read_back_later_is_not_linearizable() {
        // An acknowledged create, then the key reads as absent.
        assert_violation(&[cas(1, None, 1, true, 0, 10), read(2, None, 20, 30)]);
        // Two acknowledged writes; 2 is read, then 1 again: write 2 was lost.
        let history =
            vec![write(1, 1, 0, 10), write(2, 2, 5, 15), read(3, Some(2), 20, 25), read(3, Some(1), 30, 35)];
        assert_violation(&history);
        // Reading 1 both times is fine: the writes were concurrent, 2 went first.
        let mut reordered = history;
        reordered[2].output = Output::Read(Some(1));
        assert_linearizable(&reordered);
    }

    #[test]
    fn unknown_write_may_or_may_not_have_taken_effect() {
        let took_effect = vec![write(1, 1, 0, 10), lost(write(2, 2, 20, 0)), read(3, Some(2), 100, 110)];
        assert_linearizable(&took_effect);
        let never_did = vec![write(1, 1, 0, 10), lost(write(2, 2, 20, 0)), read(3, Some(1), 100, 110)];
        assert_linearizable(&never_did);
        // ... and it takes effect once: not before a read of 2, then undone by a read of 1.
        let both = vec![
            write(1, 1, 0, 10),
            lost(write(2, 2, 20, 0)),
            read(3, Some(2), 100, 110),
            read(3, Some(1), 120, 130),
        ];
        assert_violation(&both);
        // ... and not before it was invoked.
        let too_early = vec![write(1, 1, 0, 10), read(3, Some(2), 20, 30), lost(write(2, 2, 40, 0))];
        assert_violation(&too_early);
    }

    /// Dominance compares which unknown outcomes took effect, not just how many: after the
    /// delete, the state is the same whichever unknown write went first, but only the path
    /// that keeps write 1 for later succeeds.
    #[test]
    fn unknown_writes_taking_effect_are_not_interchangeable() {
        assert_linearizable(&[
            lost(write(1, 1, 0, 0)),
            lost(write(2, 2, 1, 0)),
            delete(3, true, 2, 10),
            read(3, Some(1), 20, 30),
        ]);
    }

    /// A configuration that spent an unknown outcome early does not stand for one that kept
    /// it: writing 5 first makes the create need the unknown delete, and the same
    /// configuration reached the other way round still has the delete for the final read.
    #[test]
    fn unknown_outcome_kept_for_later_can_matter() {
        assert_linearizable(&[
            write(1, 5, 0, 100),
            cas(2, None, 7, true, 0, 100),
            lost(delete(3, true, 0, 0)),
            write(1, 9, 110, 120),
            read(2, None, 130, 140),
        ]);
    }

    /// A failed CAS observes that the value changed: only an unknown write explains it, and
    /// the checker must keep that write (not drop it as "unobserved").
    #[test]
    fn unknown_write_explains_a_failed_cas() {
        let history = vec![write(1, 1, 0, 10), lost(write(2, 2, 20, 0)), cas(3, Some(1), 3, false, 30, 40)];
        assert_linearizable(&history);
        let without: Vec<Op> = history.iter().filter(|op| op.complete.is_some()).cloned().collect();
        assert_violation(&without);
    }

    #[test]
    fn unknown_compare_and_swaps_chain() {
        let chain = vec![
            cas(1, None, 1, true, 0, 10),
            lost(cas(2, Some(2), 3, false, 20, 0)),
            lost(cas(3, Some(1), 2, false, 25, 0)),
            read(4, Some(3), 50, 60),
        ];
        // Both took effect, the later-invoked one first.
        assert_linearizable(&chain);
        let mut broken = chain;
        broken[3].output = Output::Read(Some(4));
        assert_violation(&broken);
    }

    #[test]
    fn compare_and_swap_races() {
        // Two concurrent creates cannot both win.
        assert_violation(&[cas(1, None, 1, true, 0, 10), cas(2, None, 2, true, 0, 10)]);
        // One wins; reading the loser's value afterwards is a violation.
        let one_wins =
            vec![cas(1, None, 1, true, 0, 10), cas(2, None, 2, false, 0, 10), read(3, Some(1), 20, 30)];
        assert_linearizable(&one_wins);
        let mut loser_read = one_wins;
        loser_read[2].output = Output::Read(Some(2));
        assert_violation(&loser_read);
        // A lost update: two concurrent increments from 0 both succeed.
        assert_violation(&[
            write(1, 0, 0, 5),
            cas(1, Some(0), 1, true, 10, 20),
            cas(2, Some(0), 1, true, 10, 20),
        ]);
        // Concurrent increments that chain are fine, in the order the values say.
        assert_linearizable(&[
            write(1, 0, 0, 5),
            cas(2, Some(1), 2, true, 10, 20),
            cas(1, Some(0), 1, true, 10, 20),
            read(3, Some(2), 25, 30),
        ]);
    }

    /// An operation that completed at the millisecond another was invoked may still follow
    /// it: with a 1 ms clock, the two were concurrent.
    #[test]
    fn operations_touching_at_the_same_millisecond_are_concurrent() {
        assert_linearizable(&[write(1, 1, 0, 9), write(2, 2, 10, 20), read(3, Some(1), 20, 30)]);
        assert_violation(&[write(1, 1, 0, 9), write(2, 2, 10, 20), read(3, Some(1), 21, 30)]);
        // Touching at 10 ms, the writes may go in either order.
        assert_linearizable(&[write(1, 1, 0, 10), write(2, 2, 10, 20), read(3, Some(1), 21, 30)]);
    }

    /// P-compositionality: keys are checked independently, the failing one is named, and a
    /// key with only unknown outcomes needs no search.
    #[test]
    fn keys_are_checked_independently() {
        let mut history = vec![
            on("a", write(1, 1, 0, 10)),
            on("b", write(1, 1, 0, 10)),
            on("b", write(2, 2, 20, 30)),
            on("a", read(2, Some(1), 40, 50)),
            on("c", lost(write(3, 3, 0, 0))),
        ];
        assert_linearizable(&history);
        history.push(on("b", read(3, Some(1), 40, 50)));
        match verdict(&history) {
            Verdict::NotLinearizable { key, explanation } => {
                assert_eq!(key, "b");
                assert!(explanation.starts_with("key \"b\": "), "{explanation}");
                // Indices in the explanation are the caller's, not the key's.
                assert!(explanation.contains("op 5 (client 3): read -> 1"), "{explanation}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// `n` writes of 1 and `n + 1` deletes that each found the key, all concurrent: not
    /// linearizable (each delete needs a write since the one before), but nothing short of
    /// trying the orders shows it — no read to look ahead to, every subset a configuration.
    fn pathological(n: u64) -> Vec<Op> {
        let mut history: Vec<Op> = (0..n).map(|c| write(c, 1, 0, 100)).collect();
        history.extend((0..=n).map(|c| delete(n + c, true, 0, 100)));
        history
    }

    #[test]
    fn exhausted_budget_says_unknown_not_a_verdict() {
        let small_budget = CheckOptions { max_steps_per_key: 10_000 };
        let history = pathological(12);
        assert_eq!(
            check(&KvRegister::new(), &history, &small_budget),
            Verdict::Unknown { keys: vec!["x".to_string()] }
        );
        // The same shape, small enough to finish, is decided: the budget was what stopped it.
        assert!(matches!(
            check(&KvRegister::new(), &pathological(3), &small_budget),
            Verdict::NotLinearizable { .. }
        ));
        // A violation on another key is still a violation.
        let mut with_stale = history;
        with_stale.extend([
            on("y", write(1, 1, 0, 10)),
            on("y", write(1, 2, 20, 30)),
            on("y", read(2, Some(1), 40, 50)),
        ]);
        assert!(matches!(
            check(&KvRegister::new(), &with_stale, &small_budget),
            Verdict::NotLinearizable { key, .. } if key == "y"
        ));
    }

    /// Writes whose outcome is unknown stay pending to the end of the history; trying them
    /// lazily with dominance keeps the search polynomial in them where porcupine's greedy
    /// order would try every subset (2^60 here), with or without the lookahead.
    #[test]
    fn many_pending_unknown_writes_stay_cheap() {
        let mut history: Vec<Op> = (0..60).map(|v| lost(write(v, v, v, 0))).collect();
        history.extend(
            (0..60).rev().map(|v| read(100 + v, Some(v), 1000 + 10 * (60 - v), 1005 + 10 * (60 - v))),
        );
        // Values read in decreasing order: each unknown write took effect, in reverse invoke order.
        let options = CheckOptions::default();
        assert_eq!(check(&KvRegister::new(), &history, &options), Verdict::Linearizable);
        assert_eq!(check(&Plain, &history, &options), Verdict::Linearizable);
        // Then 59 again: its write took effect before the read of 58, and only once.
        history.push(read(200, Some(59), 5000, 5010));
        assert!(matches!(check(&KvRegister::new(), &history, &options), Verdict::NotLinearizable { .. }));
        assert!(matches!(check(&Plain, &history, &options), Verdict::NotLinearizable { .. }));
    }

    // ---- generated histories ----

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Read,
        Write,
        Cas,
        Delete,
    }

    /// One step of a sequential execution, and how to blur it into a concurrent history.
    #[derive(Clone, Debug)]
    struct Planned {
        key: u8,
        kind: Kind,
        value: u64,
        /// For a CAS: whether `expected` is the current value.
        cas_hits: bool,
        /// Milliseconds from the previous linearization point (at least 1).
        gap: u64,
        /// How far invoke and complete lie from the linearization point.
        before: u64,
        after: u64,
        unknown: bool,
    }

    /// Runs `plan` sequentially against a reference register, each step at its own
    /// linearization point, then widens each step into an interval around that point and
    /// hides the outcome of the `unknown` ones. Clients are assigned so that each runs one
    /// operation at a time (an operation with an unknown outcome holds its client forever).
    fn execute(plan: &[Planned]) -> Vec<Op> {
        let mut values: BTreeMap<u8, Option<u64>> = BTreeMap::new();
        let mut point = 1_000_000;
        let mut history = Vec::new();
        for step in plan {
            point += step.gap;
            let value = values.entry(step.key).or_default();
            let (input, output) = match step.kind {
                Kind::Read => (Input::Read, Output::Read(*value)),
                Kind::Write => {
                    *value = Some(step.value);
                    (Input::Write(step.value), Output::Write)
                }
                Kind::Cas => {
                    let expected = match (step.cas_hits, *value) {
                        (true, current) => current,
                        (false, Some(_)) if step.value % 2 == 0 => None,
                        // Never written: generated values stay below 1,000,000.
                        (false, _) => Some(step.value + 1_000_000),
                    };
                    let swaps = expected == *value;
                    if swaps {
                        *value = Some(step.value);
                    }
                    (Input::Cas { expected, new: step.value }, Output::Cas(swaps))
                }
                Kind::Delete => {
                    let existed = value.take().is_some();
                    (Input::Delete, Output::Delete(existed))
                }
            };
            history.push(Operation {
                client: 0,
                key: format!("k{}", step.key),
                input,
                output,
                invoke: point - step.before,
                complete: (!step.unknown).then_some(point + step.after),
            });
        }
        let mut by_invoke: Vec<usize> = (0..history.len()).collect();
        by_invoke.sort_by_key(|&i| history[i].invoke);
        let mut busy_until: Vec<Option<u64>> = Vec::new();
        for i in by_invoke {
            let invoke = history[i].invoke;
            let free = busy_until.iter().position(|until| until.is_some_and(|t| t < invoke));
            let client = free.unwrap_or_else(|| {
                busy_until.push(None);
                busy_until.len() - 1
            });
            busy_until[client] = history[i].complete;
            history[i].client = client as u64;
        }
        history
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![4 => Just(Kind::Read), 3 => Just(Kind::Write), 2 => Just(Kind::Cas), 1 => Just(Kind::Delete)]
    }

    fn planned(keys: u8, max_widen: u64) -> impl Strategy<Value = Planned> {
        (
            0..keys,
            kind(),
            0..8u64,
            any::<bool>(),
            1..=15u64,
            0..=max_widen,
            0..=max_widen,
            prop::bool::weighted(0.15),
        )
            .prop_map(|(key, kind, value, cas_hits, gap, before, after, unknown)| Planned {
                key,
                kind,
                value,
                cas_hits,
                gap,
                before,
                after,
                unknown,
            })
    }

    /// Up to 80 steps on 1–3 keys; intervals from points (no overlap) to ±120 ms around
    /// steps 1–15 ms apart (tens of operations in flight).
    fn plan() -> impl Strategy<Value = Vec<Planned>> {
        (1..=3u8, prop_oneof![Just(0u64), Just(10), Just(40), Just(120)])
            .prop_flat_map(|(keys, max_widen)| prop::collection::vec(planned(keys, max_widen), 1..80))
    }

    /// The (read, value) pairs such that the completed read returning `value` is a certain
    /// violation: every operation that may set `value` on the key (a write of it, a CAS to it
    /// that succeeded or whose outcome is unknown) completed, and an operation that certainly
    /// sets something else (a write of another value, a successful CAS to another value, a
    /// delete) was invoked after all of them completed and itself completed before the read
    /// was invoked. Any linearization orders setters, then that overwrite, then the read, so
    /// the read cannot see `value`.
    fn stale_read_plants(history: &[Op], reads: impl Iterator<Item = usize>) -> Vec<(usize, u64)> {
        let mut plants = Vec::new();
        for (r, read) in reads.map(|r| (r, &history[r])) {
            let (Input::Read, Some(read_invoke)) = (&read.input, read.complete.map(|_| read.invoke)) else {
                continue;
            };
            let same_key = || history.iter().filter(|op| op.key == read.key);
            let written: std::collections::BTreeSet<u64> = same_key()
                .filter_map(|op| match op.input {
                    Input::Write(v) | Input::Cas { new: v, .. } => Some(v),
                    _ => None,
                })
                .collect();
            for v in written {
                if read.output == Output::Read(Some(v)) {
                    continue;
                }
                let setters: Vec<&Op> = same_key()
                    .filter(|op| match (&op.input, op.complete, &op.output) {
                        (Input::Write(w), _, _) => *w == v,
                        (Input::Cas { new, .. }, None, _)
                        | (Input::Cas { new, .. }, _, Output::Cas(true)) => *new == v,
                        _ => false,
                    })
                    .collect();
                let Some(last_set) = setters.iter().map(|op| op.complete).max().flatten() else { continue };
                if setters.iter().any(|op| op.complete.is_none()) {
                    continue;
                }
                let overwritten = same_key().any(|op| {
                    let sets_other = match (&op.input, &op.output) {
                        (Input::Write(w), _) => *w != v,
                        (Input::Cas { new, .. }, Output::Cas(true)) => *new != v,
                        (Input::Delete, _) => true,
                        _ => false,
                    };
                    sets_other && op.invoke > last_set && op.complete.is_some_and(|c| c < read_invoke)
                });
                if overwritten {
                    plants.push((r, v));
                }
            }
        }
        plants
    }

    /// Every order of a small history, without memo or pruning: the reference the checker
    /// is compared with.
    fn brute_force(history: &[Op]) -> bool {
        fn extend(history: &[Op], done: &mut [bool], state: &Option<u64>) -> bool {
            if history.iter().zip(done.iter()).all(|(op, done)| *done || op.complete.is_none()) {
                return true;
            }
            for i in 0..history.len() {
                let must_wait = (0..history.len())
                    .any(|j| !done[j] && history[j].complete.is_some_and(|c| c < history[i].invoke));
                if done[i] || must_wait {
                    continue;
                }
                let output = history[i].complete.map(|_| &history[i].output);
                if let Some(next) = KvRegister::new().step(state, &history[i].input, output) {
                    done[i] = true;
                    if extend(history, done, &next) {
                        return true;
                    }
                    done[i] = false;
                }
            }
            false
        }
        extend(history, &mut vec![false; history.len()], &None)
    }

    /// Up to 7 operations on one key with random outcomes, intervals and unknown outcomes:
    /// linearizable or not, roughly as often.
    fn small_random_history() -> impl Strategy<Value = Vec<Op>> {
        let op = (
            kind(),
            0..3u64,
            prop::option::of(0..3u64),
            any::<bool>(),
            0..40u64,
            0..30u64,
            prop::bool::weighted(0.2),
        )
            .prop_map(|(kind, value, other, flag, invoke, length, unknown)| {
                let (input, output) = match kind {
                    Kind::Read => (Input::Read, Output::Read(other)),
                    Kind::Write => (Input::Write(value), Output::Write),
                    Kind::Cas => (Input::Cas { expected: other, new: value }, Output::Cas(flag)),
                    Kind::Delete => (Input::Delete, Output::Delete(flag)),
                };
                let complete = (!unknown).then_some(invoke + length);
                Operation { client: 0, key: "x".to_string(), input, output, invoke, complete }
            });
        prop::collection::vec(op, 1..=7)
    }

    proptest! {
        /// Invariant: no false alarms. A history whose operations are intervals around the
        /// points of a legal sequential execution, some with their outcome hidden, is
        /// linearizable (the execution itself is a witness), and the checker says so.
        #[test]
        fn blurred_sequential_execution_is_linearizable(plan in plan()) {
            let history = execute(&plan);
            prop_assert_eq!(verdict(&history), Verdict::Linearizable);
        }

        /// Invariant: no missed stale reads. Making a completed read return a value that was
        /// certainly overwritten before the read was invoked, and never written again, makes
        /// the history non-linearizable (see `stale_read_plants`), and the checker reports the
        /// read's key.
        #[test]
        fn planted_stale_read_is_caught(plan in plan(), pick in any::<Index>()) {
            let mut history = execute(&plan);
            let plants = stale_read_plants(&history, 0..history.len());
            prop_assume!(!plants.is_empty());
            let (read, stale) = plants[pick.index(plants.len())];
            history[read].output = Output::Read(Some(stale));
            match verdict(&history) {
                Verdict::NotLinearizable { key, .. } => prop_assert_eq!(&key, &history[read].key),
                other => prop_assert!(false, "planted a stale read at op {}, got {:?}", read, other),
            }
        }
    }

    proptest! {
        // Small histories are cheap; the reductions' soundness rests on this property.
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Invariant: memoization with dominance, the lazy treatment of unknown outcomes,
        /// read-only forcing, the lookahead, the rules before the search and interchangeable
        /// states never change a verdict: on histories small enough to try every order, the
        /// checker agrees with trying every order, with the reductions the register describes
        /// and without them.
        #[test]
        fn agrees_with_brute_force_on_small_histories(history in small_random_history()) {
            let expected = brute_force(&history);
            let options = CheckOptions::default();
            prop_assert_eq!(check(&KvRegister::new(), &history, &options) == Verdict::Linearizable, expected);
            prop_assert_eq!(check(&Plain, &history, &options) == Verdict::Linearizable, expected);
        }
    }

    /// The brute-force comparison is not vacuous: its generator gives both verdicts.
    #[test]
    fn small_random_histories_give_both_verdicts() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = small_random_history();
        let mut linearizable = 0;
        for _ in 0..1000 {
            let history = strategy.new_tree(&mut runner).expect("strategy").current();
            linearizable += usize::from(brute_force(&history));
        }
        assert!((200..=800).contains(&linearizable), "{linearizable} of 1000 linearizable");
    }

    /// splitmix64, for the large histories below.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }
    }

    /// `ops` operations on key "k0", 10 ms apart, each widened up to `max_widen` ms either
    /// side (300: about 30 in flight on average, up to 60), one in `unknown_one_in` with an
    /// unknown outcome.
    fn large_history(ops: usize, max_widen: u64, unknown_one_in: u64, seed: u64) -> Vec<Op> {
        let mut rng = Rng(seed);
        let plan: Vec<Planned> = (0..ops)
            .map(|_| Planned {
                key: 0,
                kind: [
                    Kind::Read,
                    Kind::Read,
                    Kind::Read,
                    Kind::Write,
                    Kind::Write,
                    Kind::Cas,
                    Kind::Cas,
                    Kind::Delete,
                ][rng.below(8) as usize],
                value: rng.below(1000),
                cas_hits: rng.below(2) == 0,
                gap: 10,
                before: rng.below(max_widen),
                after: rng.below(max_widen),
                unknown: rng.below(unknown_one_in) == 0,
            })
            .collect();
        execute(&plan)
    }

    /// The size the simulation produces: 3,000 operations on one key from tens of clients,
    /// 2% with unknown outcomes; then a planted stale read. Release-mode timing goes in the
    /// notes, not here.
    #[test]
    fn large_history_is_checked_within_budget() {
        let history = large_history(3000, 300, 50, 7);
        let clients: std::collections::BTreeSet<u64> = history.iter().map(|op| op.client).collect();
        assert!(clients.len() >= 30, "{} clients", clients.len());
        assert_eq!(verdict(&history), Verdict::Linearizable);

        let mut stale = history;
        let (read, value) = (2500..stale.len())
            .rev()
            .find_map(|r| stale_read_plants(&stale, std::iter::once(r)).first().copied())
            .expect("a late stale read to plant");
        stale[read].output = Output::Read(Some(value));
        match verdict(&stale) {
            Verdict::NotLinearizable { key, explanation } => {
                assert_eq!(key, "k0");
                assert!(explanation.contains(&format!("\n  op {read} (")), "{explanation}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A violation no rule sees up front (two concurrent writes, then reads that see them in
    /// both orders) after 1,000 operations with about ten in flight: to prove it, the search
    /// exhausts every configuration before it.
    #[test]
    fn violation_late_in_a_long_history_is_proved_by_the_search() {
        let mut history = large_history(1000, 100, 1_000_000, 11);
        let end = history.iter().filter_map(|op| op.complete).max().expect("completed operations") + 100;
        let flip_flop = [
            write(1, 5001, end, end + 10),
            write(2, 5002, end + 5, end + 15),
            read(3, Some(5002), end + 20, end + 25),
            read(3, Some(5001), end + 30, end + 35),
        ];
        history.extend(flip_flop.into_iter().map(|op| on("k0", op)));
        match verdict(&history) {
            Verdict::NotLinearizable { key, explanation } => {
                assert_eq!(key, "k0");
                assert!(explanation.contains("in time for op 1003 ("), "{explanation}");
            }
            other => panic!("{other:?}"),
        }
        // Without the flip-flop's last read, it is linearizable.
        history.pop();
        assert_eq!(verdict(&history), Verdict::Linearizable);
    }
}
