//! A tiny JSON reader for the tests that check rpush's `--status` document: values are
//! compared as parsed, never as substrings of the text.

#![allow(dead_code)]

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document; panics (naming the offset) on anything malformed.
    pub fn parse(text: &str) -> Json {
        let b = text.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i);
        ws(b, &mut i);
        assert_eq!(i, b.len(), "trailing bytes at {i} in:\n{text}");
        v
    }

    /// The member `key` of an object; panics when absent.
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => {
                &m.iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no {key:?} in {self:?}"))
                    .1
            }
            _ => panic!("not an object: {self:?}"),
        }
    }

    pub fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }

    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b" \t\r\n".contains(&b[*i]) {
        *i += 1;
    }
}

fn expect(b: &[u8], i: &mut usize, lit: &[u8]) {
    assert!(
        b[*i..].starts_with(lit),
        "expected {:?} at {}",
        String::from_utf8_lossy(lit),
        *i
    );
    *i += lit.len();
}

fn value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    assert!(*i < b.len(), "unexpected end of document");
    match b[*i] {
        b'n' => {
            expect(b, i, b"null");
            Json::Null
        }
        b't' => {
            expect(b, i, b"true");
            Json::Bool(true)
        }
        b'f' => {
            expect(b, i, b"false");
            Json::Bool(false)
        }
        b'"' => Json::Str(string(b, i)),
        b'[' => {
            *i += 1;
            let mut v = Vec::new();
            ws(b, i);
            if b[*i] == b']' {
                *i += 1;
                return Json::Arr(v);
            }
            loop {
                v.push(value(b, i));
                ws(b, i);
                match b[*i] {
                    b',' => *i += 1,
                    b']' => {
                        *i += 1;
                        return Json::Arr(v);
                    }
                    c => panic!("unexpected {:?} at {} in an array", c as char, *i),
                }
            }
        }
        b'{' => {
            *i += 1;
            let mut m = Vec::new();
            ws(b, i);
            if b[*i] == b'}' {
                *i += 1;
                return Json::Obj(m);
            }
            loop {
                ws(b, i);
                let k = string(b, i);
                ws(b, i);
                expect(b, i, b":");
                m.push((k, value(b, i)));
                ws(b, i);
                match b[*i] {
                    b',' => *i += 1,
                    b'}' => {
                        *i += 1;
                        return Json::Obj(m);
                    }
                    c => panic!("unexpected {:?} at {} in an object", c as char, *i),
                }
            }
        }
        _ => {
            let start = *i;
            while *i < b.len() && (b[*i].is_ascii_digit() || b"+-.eE".contains(&b[*i])) {
                *i += 1;
            }
            let t = std::str::from_utf8(&b[start..*i]).unwrap();
            Json::Num(t.parse().unwrap_or_else(|_| panic!("bad number {t:?} at {start}")))
        }
    }
}

fn string(b: &[u8], i: &mut usize) -> String {
    expect(b, i, b"\"");
    let mut out = Vec::new();
    loop {
        let c = b[*i];
        *i += 1;
        match c {
            b'"' => return String::from_utf8(out).expect("UTF-8 string"),
            b'\\' => {
                let e = b[*i];
                *i += 1;
                match e {
                    b'"' | b'\\' | b'/' => out.push(e),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let h = std::str::from_utf8(&b[*i..*i + 4]).unwrap();
                        let cp = u32::from_str_radix(h, 16).unwrap();
                        *i += 4;
                        let ch = char::from_u32(cp).expect("no surrogates in rpush's output");
                        out.extend_from_slice(ch.to_string().as_bytes());
                    }
                    _ => panic!("bad escape at {}", *i),
                }
            }
            _ => out.push(c),
        }
    }
}

#[test]
fn json_reader_reads_what_it_should() {
    let v = Json::parse(r#" {"a": [1, -2.5e1, true, null], "b\"\u00e9": {"c": "x\ny"}, "d": []} "#);
    assert_eq!(v.get("a").arr().len(), 4);
    assert_eq!(v.get("a").arr()[1].num(), -25.0);
    assert_eq!(v.get("b\"é").get("c").str(), Some("x\ny"));
    assert!(v.get("d").arr().is_empty());
}
