//! Finding the `raftwood` binary, and never a stale one.
//!
//! Cargo sets `CARGO_BIN_EXE_raftwood` only for the tests of the package that owns the binary
//! (`crates/kv`), so this crate derives the path from where its own test executable lives:
//! `TARGET/PROFILE/deps/TEST-HASH` → `TARGET/PROFILE/raftwood` (or
//! `TARGET/TRIPLE/PROFILE/...` when cargo was given `--target`).
//!
//! `cargo test --workspace` builds every package's binaries before it runs a test, but
//! `cargo test -p raftwood-tests` does not build `raftwood` at all, and a binary left over from an
//! older checkout would be tested instead of the code in front of you. So the first test in each
//! test process runs `cargo build -p raftwood-kv --bin raftwood` with the same profile and target
//! directory: a no-op when the binary is fresh, a rebuild otherwise. (`cargo test --workspace`
//! unifies features with dev-dependencies, so the first plain build after it may rebuild once;
//! both variants then stay cached and switching costs a relink at most.)
//!
//! `RAFTWOOD_BIN=/path/to/raftwood` skips all of this and tests that binary as it is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where a test executable says cargo's output is: which directory, profile and target triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The target directory (the one holding `CACHEDIR.TAG`).
    pub target_dir: PathBuf,
    /// The directory the profile's binaries are put in, e.g. `target/debug`.
    pub profile_dir: PathBuf,
    /// The profile's directory name: `debug` (the `dev` and `test` profiles), `release`, or a
    /// custom profile's name.
    pub profile: String,
    /// The target triple when cargo was run with `--target`.
    pub triple: Option<String>,
}

impl Layout {
    /// Derives the layout from a test executable's path, `PROFILE_DIR/deps/NAME`; `is_target_dir`
    /// says whether a directory is cargo's target directory (it holds `CACHEDIR.TAG`).
    ///
    /// Returns `None` when the path does not have that shape.
    pub fn from_test_exe(exe: &Path, is_target_dir: impl Fn(&Path) -> bool) -> Option<Layout> {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        let profile_dir = deps.parent()?;
        let profile = profile_dir.file_name()?.to_str()?.to_owned();
        let above = profile_dir.parent()?;
        if is_target_dir(above) {
            return Some(Layout {
                target_dir: above.to_path_buf(),
                profile_dir: profile_dir.to_path_buf(),
                profile,
                triple: None,
            });
        }
        // `cargo --target TRIPLE` puts the profile one level further down.
        let target_dir = above.parent()?;
        is_target_dir(target_dir).then(|| Layout {
            target_dir: target_dir.to_path_buf(),
            profile_dir: profile_dir.to_path_buf(),
            profile: profile.clone(),
            triple: above
                .file_name()
                .and_then(|t| t.to_str())
                .map(str::to_owned),
        })
    }

    /// Where the `raftwood` binary of this layout is.
    pub fn binary(&self) -> PathBuf {
        self.profile_dir
            .join(format!("raftwood{}", std::env::consts::EXE_SUFFIX))
    }

    /// The arguments of the `cargo build` that makes this layout's `raftwood`.
    pub fn build_args(&self, manifest: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["build", "-p", "raftwood-kv", "--bin", "raftwood"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push("--manifest-path".into());
        args.push(manifest.into());
        args.push("--target-dir".into());
        args.push(self.target_dir.clone().into());
        // The `test` profile inherits from `dev`, whose directory is `debug`.
        match self.profile.as_str() {
            "debug" => {}
            "release" => args.push("--release".into()),
            custom => {
                args.push("--profile".into());
                args.push(custom.into());
            }
        }
        if let Some(triple) = &self.triple {
            args.push("--target".into());
            args.push(triple.into());
        }
        args
    }
}

/// The `raftwood` binary to test: `RAFTWOOD_BIN` if set, else the one cargo builds next to this
/// test executable (built once per test process, see the module docs).
///
/// # Panics
/// When the binary cannot be built or found; the message says what to do.
pub fn raftwood() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_and_build)
}

fn locate_and_build() -> PathBuf {
    if let Some(explicit) = std::env::var_os("RAFTWOOD_BIN") {
        let path = PathBuf::from(explicit);
        assert!(
            path.is_file(),
            "RAFTWOOD_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("the test executable's own path");
    let layout = Layout::from_test_exe(&exe, |dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or_else(|| {
            panic!(
                "cannot find cargo's target directory above {}; set RAFTWOOD_BIN to the raftwood binary",
                exe.display()
            )
        });
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .join("Cargo.toml");
    // `CARGO` is set by cargo for the processes it runs; fall back to the one that compiled us.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    let args = layout.build_args(&manifest);
    // Its output goes straight to the terminal (the test harness does not capture children).
    let status = Command::new(&cargo)
        .args(&args)
        .status()
        .unwrap_or_else(|e| panic!("running {cargo:?} {args:?}: {e}"));
    assert!(
        status.success(),
        "`{cargo:?} {args:?}` failed with {status}: the raftwood binary does not build"
    );
    let binary = layout.binary();
    assert!(
        binary.is_file(),
        "cargo built raftwood but {} does not exist",
        binary.display()
    );
    binary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_is(dir: &'static str) -> impl Fn(&Path) -> bool {
        move |p| p == Path::new(dir)
    }

    #[test]
    fn plain_layout_finds_the_profile_directory() {
        let exe = Path::new("/w/target/debug/deps/transcript-0123abcd");
        let layout = Layout::from_test_exe(exe, target_is("/w/target")).unwrap();
        assert_eq!(layout.binary(), Path::new("/w/target/debug/raftwood"));
        assert_eq!(layout.triple, None);
        let args = layout.build_args(Path::new("/w/Cargo.toml"));
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "build",
                "-p",
                "raftwood-kv",
                "--bin",
                "raftwood",
                "--manifest-path",
                "/w/Cargo.toml",
                "--target-dir",
                "/w/target"
            ]
        );
    }

    #[test]
    fn release_and_custom_profiles_are_passed_on() {
        let exe = Path::new("/w/target/release/deps/t-1");
        let layout = Layout::from_test_exe(exe, target_is("/w/target")).unwrap();
        assert!(
            layout
                .build_args(Path::new("/m"))
                .contains(&"--release".into())
        );
        let exe = Path::new("/w/target/fast/deps/t-1");
        let layout = Layout::from_test_exe(exe, target_is("/w/target")).unwrap();
        let args = layout.build_args(Path::new("/m"));
        let at = args.iter().position(|a| a == "--profile").unwrap();
        assert_eq!(args[at + 1], "fast");
    }

    #[test]
    fn a_target_triple_is_found_and_passed_on() {
        let exe = Path::new("/w/target/x86_64-unknown-linux-gnu/debug/deps/t-1");
        let layout = Layout::from_test_exe(exe, target_is("/w/target")).unwrap();
        assert_eq!(layout.triple.as_deref(), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(
            layout.binary(),
            Path::new("/w/target/x86_64-unknown-linux-gnu/debug/raftwood")
        );
        let args = layout.build_args(Path::new("/m"));
        let at = args.iter().position(|a| a == "--target").unwrap();
        assert_eq!(args[at + 1], "x86_64-unknown-linux-gnu");
    }

    #[test]
    fn paths_of_another_shape_are_refused() {
        assert_eq!(
            Layout::from_test_exe(Path::new("/usr/bin/t"), |_| true),
            None
        );
        let exe = Path::new("/a/b/c/deps/t");
        assert_eq!(Layout::from_test_exe(exe, |_| false), None);
    }
}
