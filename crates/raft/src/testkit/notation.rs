//! Reading the scenario notation back: [`parse_message`] turns a message line as the output
//! prints it (`n1@2 → n3 Append prev=1@1 entries=[2@2] commit=1`, see [`crate::Message`]'s
//! `Display`) into the [`Message`], so that a scenario can inject a crafted message by copying a
//! line of output and editing it (the `inject` command).
//!
//! Entries are written `index@term` and carry no data; a `Propose` is written with a count
//! (`entries=2`) and carries that many empty entries. A read context is written `ctx=WORD` and
//! read back as that text's bytes (the scenarios' contexts are short words, `r1`). Anything else is an error naming the part it
//! could not read: a scenario is a test, and a typo must not turn into a different message.

use bytes::Bytes;

use crate::{ConfState, Entry, Index, Message, MessageBody, Snapshot, SnapshotMetadata, Term};

/// The name of every [`MessageBody`] variant ([`MessageBody::name`]): the kinds [`parse_body`]
/// reads, and the ones `drop-kind` accepts (a misspelt kind must be an error, not a filter that
/// drops nothing). A new variant is added here and to [`parse_body`].
pub const KINDS: &[&str] = &[
    "VoteRequest",
    "VoteResponse",
    "Append",
    "AppendAccepted",
    "AppendRejected",
    "Heartbeat",
    "HeartbeatResponse",
    "Propose",
    "TimeoutNow",
    "ReadIndex",
    "ReadIndexResponse",
    "Snapshot",
];

/// Parses a message in the scenario notation: `nFROM@TERM → nTO KIND FIELD...`, where `→` may
/// also be written `->`.
///
/// ```
/// use raftwood_raft::testkit::notation::parse_message;
/// use raftwood_raft::MessageBody;
///
/// let m = parse_message("n2@3 -> n1 VoteRequest transfer last=4@2").unwrap();
/// assert_eq!((m.from, m.term, m.to), (2, 3, 1));
/// assert_eq!(
///     m.body,
///     MessageBody::VoteRequest { pre_vote: false, last_index: 4, last_term: 2, leader_transfer: true }
/// );
/// // It reads what `Display` writes.
/// assert_eq!(parse_message(&m.to_string()), Ok(m));
/// ```
pub fn parse_message(line: &str) -> Result<Message, String> {
    let line = line.replace("->", "→");
    let (head, rest) = line
        .split_once('→')
        .ok_or_else(|| format!("{line:?}: expected `nFROM@TERM → nTO KIND ...`"))?;
    let (from, term) = head
        .trim()
        .strip_prefix('n')
        .and_then(|h| h.split_once('@'))
        .ok_or_else(|| format!("{head:?}: expected nFROM@TERM"))?;
    let mut words = rest.split_whitespace();
    let to = words
        .next()
        .and_then(|w| w.strip_prefix('n'))
        .ok_or_else(|| format!("{rest:?}: expected nTO"))?;
    let kind = words.next().ok_or("missing the message kind")?;
    let fields: Vec<&str> = words.collect();
    Ok(Message {
        from: number(from)?,
        to: number(to)?,
        term: number(term)?,
        body: parse_body(kind, &fields.join(" "))?,
    })
}

/// Parses a [`MessageBody`] from its kind (the variant's name) and its fields as `Display`
/// writes them.
pub fn parse_body(kind: &str, fields: &str) -> Result<MessageBody, String> {
    let f = Fields::new(fields)?;
    let body = match kind {
        "VoteRequest" => {
            let (last_index, last_term) = f.id_term("last")?;
            MessageBody::VoteRequest {
                pre_vote: f.flag("pre_vote"),
                last_index,
                last_term,
                leader_transfer: f.flag("transfer"),
            }
        }
        "VoteResponse" => MessageBody::VoteResponse {
            pre_vote: f.flag("pre_vote"),
            granted: match (f.flag("granted"), f.flag("rejected")) {
                (true, false) => true,
                (false, true) => false,
                _ => return Err("VoteResponse: say granted or rejected".into()),
            },
        },
        "Append" => {
            let (prev_index, prev_term) = f.id_term("prev")?;
            MessageBody::Append {
                prev_index,
                prev_term,
                entries: f.entries()?,
                commit: f.number("commit")?,
            }
        }
        "AppendAccepted" => MessageBody::AppendAccepted {
            match_index: f.number("match")?,
        },
        "AppendRejected" => {
            let (hint_index, hint_term) = f.id_term("hint")?;
            MessageBody::AppendRejected {
                rejected_index: f.number("rejected")?,
                hint_index,
                hint_term,
            }
        }
        "Heartbeat" => MessageBody::Heartbeat {
            commit: f.number("commit")?,
            context: f.context(),
        },
        "HeartbeatResponse" => MessageBody::HeartbeatResponse {
            context: f.context(),
        },
        "Propose" => MessageBody::Propose {
            entries: vec![Entry::default(); f.number::<usize>("entries")?],
        },
        "TimeoutNow" => MessageBody::TimeoutNow,
        "ReadIndex" => MessageBody::ReadIndex {
            context: f.context().ok_or("ReadIndex: missing ctx=")?,
        },
        "ReadIndexResponse" => MessageBody::ReadIndexResponse {
            index: f.number("index")?,
            context: f.context().ok_or("ReadIndexResponse: missing ctx=")?,
        },
        // `Snapshot 5@1 voters=[1, 2, 3]`: the metadata; the data is not written (opaque).
        "Snapshot" => {
            let (index, term) = id_term(f.flags.first().ok_or("Snapshot: expected INDEX@TERM")?)?;
            let list = f.value("voters")?;
            let inner = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| format!("voters={list}: expected [ID, ...]"))?;
            let voters = inner
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(number)
                .collect::<Result<_, _>>()?;
            MessageBody::Snapshot {
                snapshot: Box::new(Snapshot {
                    metadata: SnapshotMetadata {
                        index,
                        term,
                        conf_state: ConfState { voters },
                    },
                    data: Bytes::new(),
                }),
            }
        }
        other => return Err(format!("unknown message kind {other}")),
    };
    Ok(body)
}

/// The fields of a message: bare flags (`pre_vote`) and `key=value` pairs, where the value of
/// `entries` is a bracketed list that may contain spaces.
struct Fields<'a> {
    flags: Vec<&'a str>,
    values: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Result<Fields<'a>, String> {
        let (mut flags, mut values) = (Vec::new(), Vec::new());
        let mut rest = text.trim();
        while !rest.is_empty() {
            let word_end = rest.find(' ').unwrap_or(rest.len());
            let (key, value_and_rest) = match rest[..word_end].split_once('=') {
                None => {
                    flags.push(&rest[..word_end]);
                    rest = rest[word_end..].trim_start();
                    continue;
                }
                Some((key, _)) => (key, &rest[key.len() + 1..]),
            };
            let value_end = if value_and_rest.starts_with('[') {
                value_and_rest
                    .find(']')
                    .map(|i| i + 1)
                    .ok_or_else(|| format!("{key}: unclosed ["))?
            } else {
                value_and_rest.find(' ').unwrap_or(value_and_rest.len())
            };
            values.push((key, &value_and_rest[..value_end]));
            rest = value_and_rest[value_end..].trim_start();
        }
        Ok(Fields { flags, values })
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    fn value(&self, key: &str) -> Result<&'a str, String> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("missing {key}="))
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        number(self.value(key)?)
    }

    /// A read context, `ctx=r1` (written as text: one word, possibly empty), if there is one.
    fn context(&self) -> Option<Bytes> {
        self.value("ctx")
            .ok()
            .map(|c| Bytes::copy_from_slice(c.as_bytes()))
    }

    fn id_term(&self, key: &str) -> Result<(Index, Term), String> {
        id_term(self.value(key)?)
    }

    /// `entries=[2@1 3@1]`, entries without data.
    fn entries(&self) -> Result<Vec<Entry>, String> {
        let list = self.value("entries")?;
        let inner = list
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .ok_or_else(|| format!("entries={list}: expected [INDEX@TERM ...]"))?;
        inner
            .split_whitespace()
            .map(|e| {
                let (index, term) = id_term(e)?;
                Ok(Entry {
                    index,
                    term,
                    ..Default::default()
                })
            })
            .collect()
    }
}

/// `INDEX@TERM`.
fn id_term(s: &str) -> Result<(Index, Term), String> {
    let (i, t) = s
        .split_once('@')
        .ok_or_else(|| format!("{s:?}: expected INDEX@TERM"))?;
    Ok((number(i)?, number(t)?))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of message reads back from what `Display` writes.
    #[test]
    fn display_round_trips() {
        let e = |index, term| Entry {
            index,
            term,
            ..Default::default()
        };
        let bodies = [
            MessageBody::VoteRequest {
                pre_vote: true,
                last_index: 3,
                last_term: 2,
                leader_transfer: false,
            },
            MessageBody::VoteResponse {
                pre_vote: false,
                granted: false,
            },
            MessageBody::Append {
                prev_index: 1,
                prev_term: 1,
                entries: vec![e(2, 1), e(3, 2)],
                commit: 1,
            },
            MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![],
                commit: 0,
            },
            MessageBody::AppendAccepted { match_index: 7 },
            MessageBody::AppendRejected {
                rejected_index: 5,
                hint_index: 3,
                hint_term: 1,
            },
            MessageBody::Heartbeat {
                commit: 2,
                context: None,
            },
            MessageBody::Heartbeat {
                commit: 2,
                context: Some("r1".into()),
            },
            MessageBody::HeartbeatResponse { context: None },
            MessageBody::HeartbeatResponse {
                context: Some("r1".into()),
            },
            MessageBody::Propose {
                entries: vec![Entry::default(); 2],
            },
            MessageBody::TimeoutNow,
            MessageBody::ReadIndex {
                context: "r2".into(),
            },
            MessageBody::ReadIndexResponse {
                index: 4,
                context: "r2".into(),
            },
            MessageBody::Snapshot {
                snapshot: Box::new(Snapshot {
                    metadata: SnapshotMetadata {
                        index: 5,
                        term: 1,
                        conf_state: ConfState {
                            voters: vec![1, 2, 3],
                        },
                    },
                    data: Bytes::new(),
                }),
            },
        ];
        let names: Vec<&str> = bodies.iter().map(MessageBody::name).collect();
        for kind in KINDS {
            assert!(names.contains(kind), "{kind} has no round-trip case");
        }
        for body in bodies {
            assert!(
                KINDS.contains(&body.name()),
                "{} is not in KINDS",
                body.name()
            );
            let m = Message {
                from: 1,
                to: 2,
                term: 4,
                body,
            };
            assert_eq!(parse_message(&m.to_string()), Ok(m));
        }
    }

    #[test]
    fn typos_are_errors() {
        assert!(parse_message("n1@1 → n2 Heartbeat").is_err());
        assert!(parse_message("n1@1 → n2 Heartbeet commit=1").is_err());
        assert!(parse_message("n1 → n2 HeartbeatResponse").is_err());
        assert!(parse_message("n1@1 → n2 VoteResponse").is_err());
        assert!(parse_message("n1@1 → n2 ReadIndex").is_err());
        assert!(parse_message("n1@1 → n2 Append prev=0@0 entries=[1@1 commit=1").is_err());
    }
}
