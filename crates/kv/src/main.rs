//! The `raftwood` binary.

fn main() {
    eprintln!("raftwood: not built yet (issue 12)");
    std::process::exit(2);
}
