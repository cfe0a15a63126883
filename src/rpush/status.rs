//! The `--status` file: a small JSON document describing each host, rewritten after
//! every change of state so that monitoring (or a curious operator with `jq`) can see
//! what is pending where and why.
//!
//! Written to a temporary file in the same directory and renamed over the old one, so a
//! reader never sees half a document. The JSON is produced by hand (a dozen lines of
//! escaping) rather than pulling in serde for one flat structure.

use std::fs;
use std::io::Write;
use std::path::Path;

/// What the status file says about one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostStatus {
    pub name: String,
    pub dest: String,
    /// Paths not yet delivered (waiting, or in the rsync that is running).
    pub pending: usize,
    pub running: bool,
    /// Paths rsync could not transfer in a push that delivered the rest (exit 23),
    /// escaped for reading.
    pub failing: Vec<String>,
    pub pushes: u64,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_time: Option<String>,
    pub consecutive_failures: u32,
    /// Seconds until the next attempt when backing off.
    pub retry_in: Option<f64>,
    /// When its current outage began (its first failed push since the last success).
    pub outage_since: Option<String>,
}

/// Escapes a string for a JSON string literal.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn string_or_null(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("\"{}\"", escape(s)),
        None => "null".into(),
    }
}

/// Who writes the document and how often: what lets a reader tell a dead rpush (its
/// pid gone, or the heartbeat older than a few intervals) from an idle one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    pub pid: u32,
    /// The document is rewritten at least this often (the heartbeat).
    pub every_secs: u64,
}

/// Renders the whole document; `updated` is also the heartbeat time.
pub fn render(updated: &str, state: &str, writer: Writer, hosts: &[HostStatus]) -> String {
    let mut out = format!(
        "{{\n  \"updated\": \"{}\",\n  \"state\": \"{}\",\n  \"pid\": {},\n  \"heartbeat\": \"{}\",\n  \
         \"heartbeat_every_seconds\": {},\n  \"hosts\": [",
        escape(updated),
        escape(state),
        writer.pid,
        escape(updated),
        writer.every_secs,
    );
    for (i, h) in hosts.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "    {{\"host\": \"{}\", \"dest\": \"{}\", \"pending\": {}, \"running\": {}, \"pushes\": {}, \
             \"last_success\": {}, \"last_error\": {}, \"last_error_time\": {}, \"consecutive_failures\": {}, \
             \"retry_in_seconds\": {}, \"outage_since\": {}, \"failing\": [{}]}}",
            escape(&h.name),
            escape(&h.dest),
            h.pending,
            h.running,
            h.pushes,
            string_or_null(&h.last_success),
            string_or_null(&h.last_error),
            string_or_null(&h.last_error_time),
            h.consecutive_failures,
            h.retry_in.map_or("null".to_string(), |s| format!("{s:.1}")),
            string_or_null(&h.outage_since),
            h.failing
                .iter()
                .map(|f| format!("\"{}\"", escape(f)))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    out.push_str("\n  ]\n}\n");
    out
}

/// Replaces `path` with `content` atomically (temporary file + rename).
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("a\"b\\c\nd\u{1}é"), "a\\\"b\\\\c\\nd\\u0001é");
    }

    #[test]
    fn document_shape() {
        let h = HostStatus {
            name: "web1".into(),
            dest: "rsync://u@web1/m/".into(),
            pending: 3,
            last_error: Some("rsync exit 5: @ERROR: auth failed".into()),
            consecutive_failures: 2,
            retry_in: Some(4.0),
            ..Default::default()
        };
        let w = Writer { pid: 42, every_secs: 2 };
        let doc = render(
            "2026-01-01T00:00:00Z",
            "running",
            w,
            &[h.clone(), HostStatus { name: "b".into(), ..h }],
        );
        assert!(doc.starts_with("{\n  \"updated\": \"2026-01-01T00:00:00Z\",\n  \"state\": \"running\",\n  \"pid\": 42,\n  \"heartbeat\": \"2026-01-01T00:00:00Z\",\n  \"heartbeat_every_seconds\": 2,\n  \"hosts\": [\n    {\"host\": \"web1\""));
        assert!(doc.contains("\"pending\": 3, \"running\": false, \"pushes\": 0, \"last_success\": null, \"last_error\": \"rsync exit 5: @ERROR: auth failed\""));
        assert!(doc.contains("\"retry_in_seconds\": 4.0, \"outage_since\": null, \"failing\": []}"));
        assert!(doc.ends_with("}\n  ]\n}\n"));
        assert_eq!(
            render("t", "done", w, &[]),
            "{\n  \"updated\": \"t\",\n  \"state\": \"done\",\n  \"pid\": 42,\n  \"heartbeat\": \"t\",\n  \"heartbeat_every_seconds\": 2,\n  \"hosts\": [\n  ]\n}\n"
        );
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("status.json");
        write_atomic(&p, "one").unwrap();
        write_atomic(&p, "two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
