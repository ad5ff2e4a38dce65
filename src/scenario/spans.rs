//! Where each value of a scenario file starts, by path (`timeline[1].killHost`,
//! `controlPlane.hosts`), read from yaml-rust2's event parser. Checks that run after
//! deserializing name a path; this index turns it into the line and column the parser saw,
//! so an error lands on the right line even when the same text appears elsewhere (a key
//! repeated inside a description, two timeline entries at one `at`).

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Positions (1-based line and column) by path.
#[derive(Clone, Debug, Default)]
pub struct Spans {
    at: BTreeMap<String, (usize, usize)>,
}

enum Frame {
    /// `fresh`: no key read yet (a sequence item's mapping starts at its first key).
    Map {
        path: String,
        key: Option<String>,
        fresh: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    spans: Spans,
    /// Inside a complex (non-scalar) mapping key: positions are not recorded.
    skip_depth: usize,
}

impl Builder {
    /// The path of the value starting now, recording its position; `None` at a map key.
    fn value_path(&mut self, mark: Marker) -> Option<String> {
        let at = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                self.spans.at.entry(p.clone()).or_insert(at);
                Some(p)
            }
            Some(Frame::Map { path, key, .. }) => {
                let k = key.take()?;
                Some(if path.is_empty() { k } else { format!("{path}.{k}") })
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.skip_depth > 0 {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.skip_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => self.skip_depth -= 1,
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(Frame::Map { path, key: key @ None, fresh }) = self.stack.last_mut() {
                    let at = (mark.line(), mark.col() + 1);
                    if std::mem::take(fresh) && path.ends_with(']') {
                        self.spans.at.insert(path.clone(), at);
                    }
                    let p = if path.is_empty() { text.clone() } else { format!("{path}.{text}") };
                    self.spans.at.entry(p).or_insert(at);
                    *key = Some(text);
                } else {
                    self.value_path(mark);
                }
            }
            Event::Alias(_) => {
                self.value_path(mark);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let at_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                if at_key {
                    self.skip_depth = 1;
                    return;
                }
                let path = self.value_path(mark).unwrap_or_default();
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map { path, key: None, fresh: true },
                    _ => Frame::Seq { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Spans {
    /// Indexes the first document of `text`; text the parser rejects gives what it read
    /// before the error (serde_yaml reports the error itself).
    pub fn parse(text: &str) -> Spans {
        let mut b = Builder { stack: Vec::new(), spans: Spans::default(), skip_depth: 0 };
        let _ = Parser::new_from_str(text).load(&mut b, false);
        b.spans
    }

    /// The position of `path`, or of its nearest ancestor that has one, or (1, 1).
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(at) = self.at.get(p) {
                return *at;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }

    /// The position of `path` if the file has it.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        self.at.get(path).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_have_their_own_lines() {
        let text = "name: x\ndescription: \"hosts: 9 here\"\ncontrolPlane:\n  hosts: 9\ntimeline:\n  - at: 10s\n    heal: {}\n  - at: 10s\n    killHost: node-9\n";
        let s = Spans::parse(text);
        assert_eq!(s.get("controlPlane.hosts"), Some((4, 3)));
        assert_eq!(s.get("timeline[1]"), Some((8, 5)));
        assert_eq!(s.get("timeline[1].killHost"), Some((9, 5)));
        assert_eq!(s.get("timeline[0].at"), Some((6, 5)));
        assert_eq!(s.locate("timeline[1].killHost.nothing"), (9, 5));
        assert_eq!(s.locate("nowhere"), (1, 1));
    }

    #[test]
    fn flow_collections_are_indexed() {
        let s = Spans::parse("a: {b: [1, {c: 2}]}\n");
        assert_eq!(s.get("a.b[1].c"), Some((1, 13)));
    }
}
