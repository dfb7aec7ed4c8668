//! Embeds the git commit the module is built from (`harness._native.__git_commit__`), when it
//! is built from a checkout; a build from an sdist has no repository and embeds nothing ("").
//! The harness's `build_id` hashes the extension file with it (`harness/native.py`).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_default();
    println!("cargo:rustc-env=HARNESS_GIT_COMMIT={commit}");
    // Rebuilt when HEAD moves (a new commit, a checkout); the ref file HEAD names is watched
    // too when there is one.
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--git-path", "HEAD"])
        .output()
    {
        if let Ok(path) = String::from_utf8(out.stdout) {
            println!("cargo:rerun-if-changed={}", path.trim());
        }
    }
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--symbolic-full-name", "HEAD"])
        .output()
    {
        if let Ok(name) = String::from_utf8(out.stdout) {
            let name = name.trim();
            if name.starts_with("refs/") {
                if let Ok(out) = Command::new("git")
                    .args(["rev-parse", "--git-path", name])
                    .output()
                {
                    if let Ok(path) = String::from_utf8(out.stdout) {
                        println!("cargo:rerun-if-changed={}", path.trim());
                    }
                }
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
