//! The `--status` file: a small JSON document describing each host, rewritten after
//! every change of state so that monitoring (or a curious operator with `jq`) can see
//! what is pending where and why.
//!
//! Written to a temporary file in the same directory and renamed over the old one, so a
//! reader never sees half a document. The JSON is produced by hand (a dozen lines of
//! escaping) rather than pulling in serde for one flat structure.

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

/// Replaces `path` with `content` atomically (see `common::fs`); mode 0666 less the
/// umask, as any file rpush creates for others to read.
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    crate::common::fs::replace_file(path, content.as_bytes(), 0o666, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let s = "a\"b\\c\nd\u{1}\u{7f}é\t\r";
        assert_eq!(escape("a\"b\\c\nd\u{1}é"), "a\\\"b\\\\c\\nd\\u0001é");
        // Whatever the text, a JSON reader gets it back unchanged.
        let back: String = serde_json::from_str(&format!("\"{}\"", escape(s))).unwrap();
        assert_eq!(back, s);
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
        let v: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
        assert_eq!(v["updated"], "2026-01-01T00:00:00Z");
        assert_eq!(v["state"], "running");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["heartbeat"], "2026-01-01T00:00:00Z");
        assert_eq!(v["heartbeat_every_seconds"], 2);
        let hosts = v["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            hosts[0],
            serde_json::json!({
                "host": "web1", "dest": "rsync://u@web1/m/", "pending": 3, "running": false,
                "pushes": 0, "last_success": null,
                "last_error": "rsync exit 5: @ERROR: auth failed", "last_error_time": null,
                "consecutive_failures": 2, "retry_in_seconds": 4.0,
                "outage_since": null, "failing": []
            })
        );
        assert_eq!(hosts[1]["host"], "b");
        // A text file: it ends in a newline.
        assert!(doc.ends_with("}\n"));
        let empty: serde_json::Value = serde_json::from_str(&render("t", "done", w, &[])).unwrap();
        assert_eq!(
            empty,
            serde_json::json!({"updated": "t", "state": "done", "pid": 42, "heartbeat": "t",
                "heartbeat_every_seconds": 2, "hosts": []})
        );
    }
}
