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
    pub pushes: u64,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_time: Option<String>,
    pub consecutive_failures: u32,
    /// Seconds until the next attempt when backing off.
    pub retry_in: Option<f64>,
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

/// Renders the whole document.
pub fn render(updated: &str, state: &str, hosts: &[HostStatus]) -> String {
    let mut out = format!(
        "{{\n  \"updated\": \"{}\",\n  \"state\": \"{}\",\n  \"hosts\": [",
        escape(updated),
        escape(state)
    );
    for (i, h) in hosts.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "    {{\"host\": \"{}\", \"dest\": \"{}\", \"pending\": {}, \"running\": {}, \"pushes\": {}, \
             \"last_success\": {}, \"last_error\": {}, \"last_error_time\": {}, \"consecutive_failures\": {}, \
             \"retry_in_seconds\": {}}}",
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
        let doc = render(
            "2026-01-01T00:00:00Z",
            "running",
            &[h.clone(), HostStatus { name: "b".into(), ..h }],
        );
        let v: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
        assert_eq!(v["updated"], "2026-01-01T00:00:00Z");
        assert_eq!(v["state"], "running");
        let hosts = v["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            hosts[0],
            serde_json::json!({
                "host": "web1", "dest": "rsync://u@web1/m/", "pending": 3, "running": false,
                "pushes": 0, "last_success": null,
                "last_error": "rsync exit 5: @ERROR: auth failed", "last_error_time": null,
                "consecutive_failures": 2, "retry_in_seconds": 4.0
            })
        );
        assert_eq!(hosts[1]["host"], "b");
        // A text file: it ends in a newline.
        assert!(doc.ends_with("}\n"));
        let empty: serde_json::Value = serde_json::from_str(&render("t", "done", &[])).unwrap();
        assert_eq!(empty, serde_json::json!({"updated": "t", "state": "done", "hosts": []}));
    }
}
