//! Conf changes through the loop: an added voter's URL reaches the transport, a removed node
//! stops with `Removed`, the request's id comes back in `Apply::ConfChange`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, config};
use raftwood_node::{Apply, ConfChangeRequest, Outcome, StartFrom};
use raftwood_raft::ConfChange;

#[test]
fn an_added_voter_is_dialled_at_the_url_in_the_change() {
    let mut c = Cluster::new(3);
    c.elect(1);
    let mut cfg = config(4, 3);
    cfg.join = true;
    c.add_member(cfg, StartFrom::Fresh);
    let change = ConfChange::add_voter(4).with_context("http://n4:2380");
    c.m(1)
        .node()
        .on_conf_change(ConfChangeRequest { id: 9, change });
    c.pump();
    c.tick(3);
    let changes = c.net.peer_changes();
    for id in 1..=3 {
        assert!(
            changes.contains(&(id, 4, Some("http://n4:2380".to_string()))),
            "n{id}: {changes:?}"
        );
    }
    c.propose(1, 1, "after");
    c.tick(2);
    assert_eq!(c.commands(4), ["after"], "the new voter replicates");
    assert_eq!(c.m(4).node().raw().status().conf_state.voters, [1, 2, 3, 4]);
}

#[test]
fn a_node_removed_by_a_conf_change_stops_with_removed() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.m(3).consuming = false;
    let change = ConfChange::remove_node(3);
    c.m(1)
        .node()
        .on_conf_change(ConfChangeRequest { id: 17, change });
    c.pump();
    c.tick(3);
    let m3 = c.m(3);
    // The harness finishes a stopping node; look at what it published before.
    assert!(m3.node.is_none(), "n3 stopped");
    let items: Vec<Apply> = m3.receivers.apply.try_iter().collect();
    assert!(
        items.iter().any(
            |i| matches!(i, Apply::ConfChange { id: 17, change, conf_state, .. }
                if conf_state.voters == [1, 2] && *change == ConfChange::remove_node(3))
        ),
        "the request's id comes back with the change as proposed, on n3 too: {items:?}"
    );
    assert!(c.net.peer_changes().contains(&(1, 3, None)));
    c.propose(1, 2, "two voters");
    assert_eq!(c.commands(2), ["two voters"]);
}

#[test]
fn removed_outcome_is_returned_by_finish() {
    let mut c = Cluster::new(2);
    c.elect(1);
    let change = ConfChange::remove_node(2);
    c.m(1)
        .node()
        .on_conf_change(ConfChangeRequest { id: 1, change });
    // Drive n2 by hand so that we keep it: the harness would finish it.
    for _ in 0..10 {
        c.m(1).node().on_tick();
        c.m(1).node().process_ready().unwrap();
        let m2 = c.m(2);
        let node = m2.node.as_mut().unwrap();
        while let Ok(ev) = m2.events.try_recv() {
            node.on_transport_event(ev);
        }
        node.process_ready().unwrap();
        if node.stopping().is_some() {
            break;
        }
        while let Ok(ev) = c.m(1).events.try_recv() {
            c.m(1).node().on_transport_event(ev);
        }
    }
    let node = c.m(2).node.take().unwrap();
    assert_eq!(node.finish().unwrap(), Outcome::Removed);
    let trace = c.m(2).trace.lock().clone();
    assert!(
        matches!(trace.last(), Some(common::Step::Close)),
        "the log is closed"
    );
}
