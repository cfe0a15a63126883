//! The documentation stays true: shell completions are regenerated from the CLI
//! definitions and must match what is committed, every long option a binary accepts
//! appears in its man page, and each man page renders without warnings.
//!
//! To refresh the completions after changing options: `scripts/gen-completions`.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap_complete::Shell;

/// Each tool: its name and its clap description.
fn tools() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("rwait", syncpipe::rwait::command()),
        ("rbatch", syncpipe::rbatch::command()),
        ("rpush", syncpipe::rpush::command()),
    ]
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn completion_file(name: &str, shell: Shell) -> PathBuf {
    root().join("completions").join(match shell {
        Shell::Bash => format!("{name}.bash"),
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => unreachable!(),
    })
}

#[test]
fn completions_are_up_to_date() {
    let update = std::env::var_os("UPDATE_COMPLETIONS").is_some();
    let mut stale = vec![];
    for (name, cmd) in tools() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), name, &mut buf);
            let path = completion_file(name, shell);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &buf).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(buf.as_slice()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale completions (run scripts/gen-completions): {stale:?}"
    );
}

fn man_page(name: &str) -> PathBuf {
    root().join("man").join(format!("{name}.1"))
}

#[test]
fn every_long_option_is_in_the_man_page() {
    for (name, cmd) in tools() {
        let src = std::fs::read_to_string(man_page(name)).unwrap_or_else(|e| panic!("{name}.1: {e}"));
        // roff writes a literal hyphen as \-.
        let text = src.replace("\\-", "-");
        let missing: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !text.contains(&format!("--{l}")))
            .map(|l| format!("--{l}"))
            .collect();
        assert!(missing.is_empty(), "man/{name}.1 lacks {missing:?}");
    }
}

#[test]
fn man_pages_render_without_warnings() {
    assert!(
        Path::new("/usr/bin/man").exists(),
        "the man page check needs man-db: apt-get install man-db"
    );
    for (name, _) in tools() {
        let out = Command::new("man")
            .args(["-l", "--warnings"])
            .arg(man_page(name))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "man {name}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "man/{name}.1 warnings:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "man/{name}.1 rendered nothing");
        let src = std::fs::read_to_string(man_page(name)).unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                src.contains(&format!(".SH {section}\n")) || src.contains(&format!(".SH \"{section}\"\n")),
                "man/{name}.1 has no {section} section"
            );
        }
    }
}

#[test]
fn tool_specific_man_sections() {
    let wanted: [(&str, &[&str]); 2] = [
        ("rwait", &["DIFFERENCES", "FORMAT", "CAVEATS"]),
        ("rpush", &["HOSTS FILE", "JOURNAL"]),
    ];
    for (name, sections) in wanted {
        let text = std::fs::read_to_string(man_page(name)).unwrap();
        for s in sections {
            assert!(
                text.contains(&format!(".SH {s}\n")) || text.contains(&format!(".SH \"{s}\"\n")),
                "man/{name}.1 has no {s} section"
            );
        }
    }
}
