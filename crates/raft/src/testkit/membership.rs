//! Membership changes in the simulated cluster: a node joining ([`Cluster::add_node`]),
//! proposing a change, and the application's side of applying one (`apply_conf_change`, run for
//! each committed conf-change entry between `ready` and `advance`), with the configuration each
//! node's application holds ([`AppConf`]).

use std::collections::BTreeSet;

use super::cluster::{Cluster, list};
use super::safety::Verdict;
use crate::{ConfChange, ConfChangeStep, Entry, MemStorage, NodeId, Role};

/// The part of a node's application state that membership changes touch: the configuration it
/// applied, and the ids it applied a removal of. Like `applied`, it survives a crash with the
/// state machine; a node restarted without `applied` starts from the bootstrap configuration and
/// applies the changes again.
#[derive(Clone, Debug, Default)]
pub(super) struct AppConf {
    pub(super) voters: Vec<NodeId>,
    /// Ids this node's application has removed from the cluster (and not added back). Messages
    /// from them are dropped on arrival, as etcd's server drops messages from removed members
    /// (`IsIDRemoved`): a removed node that never learned it was removed would otherwise disrupt
    /// the cluster with elections forever (thesis §4.2.3).
    pub(super) removed: BTreeSet<NodeId>,
}

impl AppConf {
    /// The application loads a snapshot whose configuration is `voters` (the one as of the
    /// snapshot's index). The ids it knew as members and are not among `voters` were removed
    /// meanwhile; a node added and removed again entirely within the snapshot is not learned
    /// (its messages are then not dropped on arrival, and the core ignores them as it ignores
    /// any node outside its configuration).
    pub(super) fn load(&mut self, voters: &[NodeId]) {
        let known: BTreeSet<NodeId> = self.removed.iter().chain(&self.voters).copied().collect();
        self.removed = known.into_iter().filter(|v| !voters.contains(v)).collect();
        self.voters = voters.to_vec();
    }
}

impl Cluster {
    /// A new, empty node `id` that will join the cluster: it is not a voter until a committed
    /// change adds it (`conf-change`), and it never campaigns before. Returns whether it was
    /// created (not if `id` exists).
    ///
    /// It starts with the cluster's bootstrap configuration and an empty log, the state every
    /// log of the cluster starts from, and learns the changes since then from the leader's
    /// appends, applying them in order like everyone else. That is what etcd's raftexample does
    /// with `--join` (a node started with no peers replays the log from its first entry, where
    /// etcd keeps the bootstrap configuration; raftwood keeps it in the storage's initial
    /// state). A joining node may not start with the new configuration: it would apply the
    /// log's older changes on top of a newer configuration.
    pub fn add_node(&mut self, id: NodeId) -> bool {
        if id == 0 || self.ids().contains(&id) {
            return false;
        }
        let disk = MemStorage::new_with_voters(&self.bootstrap);
        self.insert_node(id, disk);
        let voters = list(&self.bootstrap);
        self.say(format!(
            "n{id} added, empty, with bootstrap voters {voters}"
        ));
        true
    }

    /// The latest configuration any node has applied (the bootstrap one before any change): the
    /// members that liveness is asked of.
    pub fn voters(&self) -> Vec<NodeId> {
        self.history.latest_config().to_vec()
    }

    /// Proposes `cc` on node `id`, writing any error to the output. Returns whether the node
    /// accepted it.
    pub fn propose_conf_change(&mut self, id: NodeId, cc: ConfChange) -> bool {
        match self.on_node(id, |n| n.propose_conf_change(cc)) {
            None => {
                self.say(format!("n{id} is down"));
                false
            }
            Some(Err(e)) => {
                self.say(format!("n{id} propose conf change: {e}"));
                false
            }
            Some(Ok(())) => true,
        }
    }

    /// The application of node `id` applies the committed conf change `e`, as a real one does
    /// between `ready` and `advance`.
    pub(super) fn apply_conf_change(&mut self, id: NodeId, e: &Entry) {
        let cc = match ConfChange::decode(&e.data) {
            Ok(cc) => cc,
            Err(err) => {
                return self.say(format!(
                    "n{id} cannot decode conf change {}: {err}",
                    e.index
                ));
            }
        };
        let was_leader = self
            .node(id)
            .is_some_and(|n| n.status().soft_state.role == Role::Leader);
        match self.on_node(id, |n| n.apply_conf_change(&cc)) {
            Some(Ok(cs)) => {
                if was_leader {
                    self.coverage.conf_changes_applied_by_leader += 1;
                    if !cs.voters.contains(&id) {
                        self.coverage.removed_leader_stepped_down += 1;
                    }
                }
                self.say(format!(
                    "n{id} conf change {cc}: voters {}",
                    list(&cs.voters)
                ));
                let app = self.apps.entry(id).or_default();
                for step in &cc.steps {
                    match *step {
                        ConfChangeStep::AddVoter(v) => app.removed.remove(&v),
                        ConfChangeStep::RemoveNode(v) => app.removed.insert(v),
                    };
                }
                app.voters = cs.voters.clone();
                if let Err(v) = self.history.conf_applied(id, e.index, &cs.voters) {
                    self.fail(Verdict::Safety(v));
                }
            }
            Some(Err(err)) => self.say(format!("n{id} conf change {cc} refused: {err}")),
            None => {}
        }
    }
}
