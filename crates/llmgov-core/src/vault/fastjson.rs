//! A fast check that a line is one JSON object, for the import path: it accepts only what
//! `serde_json` accepts, and says "not sure" (never "invalid") otherwise, so that the
//! caller asks `serde_json` for the verdict and its error message. Strings, most of a chat
//! record, are scanned with SIMD searches instead of byte by byte.

/// Deeper nesting is left to `serde_json` (its limit is 128).
const MAX_DEPTH: usize = 100;

/// True when `line` is certainly one JSON object (with optional surrounding whitespace).
pub fn is_object(line: &[u8]) -> bool {
    if std::str::from_utf8(line).is_err() {
        return false;
    }
    let mut p = Parser { b: line, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') || !p.value(0) {
        return false;
    }
    p.ws();
    p.i == line.len()
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < MAX_DEPTH && self.object(depth + 1),
            Some(b'[') => depth < MAX_DEPTH && self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1; // {
        self.ws();
        if self.eat(b'}') {
            return true;
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') || !self.string() {
                return false;
            }
            self.ws();
            if !self.eat(b':') {
                return false;
            }
            self.ws();
            if !self.value(depth) {
                return false;
            }
            self.ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}');
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1; // [
        self.ws();
        if self.eat(b']') {
            return true;
        }
        loop {
            self.ws();
            if !self.value(depth) {
                return false;
            }
            self.ws();
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']');
        }
    }

    /// A string from its opening quote; escapes other than `\uXXXX` of a non-surrogate are
    /// simple, `\u` surrogates are left to `serde_json`.
    fn string(&mut self) -> bool {
        self.i += 1; // "
        loop {
            let rest = &self.b[self.i..];
            let Some(k) = memchr::memchr2(b'"', b'\\', rest) else {
                return false;
            };
            if rest[..k].iter().any(|c| *c < 0x20) {
                return false;
            }
            self.i += k + 1;
            if rest[k] == b'"' {
                return true;
            }
            match self.peek() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                Some(b'u') => {
                    let Some(hex) = self.b.get(self.i + 1..self.i + 5) else {
                        return false;
                    };
                    let Some(v) = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                    else {
                        return false;
                    };
                    if !hex.iter().all(u8::is_ascii_hexdigit) || (0xD800..=0xDFFF).contains(&v) {
                        return false;
                    }
                    self.i += 5;
                }
                _ => return false,
            }
        }
    }

    /// JSON numbers; long ones and exponents (which `serde_json` may find out of range)
    /// are left to it.
    fn number(&mut self) -> bool {
        let start = self.i;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            _ => return false,
        }
        if self.eat(b'.') {
            let f = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            if self.i == f {
                return false;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return false;
        }
        self.i - start <= 15
    }
}

#[cfg(test)]
mod tests {
    use super::is_object;

    fn serde_ok(l: &[u8]) -> bool {
        l.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok()
    }

    #[test]
    fn accepts_ordinary_records_and_defers_the_rest() {
        for ok in [
            r#"{}"#,
            r#"  {"a":1} "#,
            r#"{"a":[1,2.5,-3,0,true,false,null,{"b":"c\n\"d\u00e9\\"}],"e":""}"#,
            r#"{"msg":"héllo ✓ 😀","n":-0.25}"#,
        ] {
            assert!(is_object(ok.as_bytes()), "{ok}");
            assert!(serde_ok(ok.as_bytes()));
        }
        for not in [
            "",
            "[]",
            "1",
            "{",
            "{}x",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,}",
            "{a:1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":tru}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":1e999}",
            "{\"a\":[1 2]}",
            "{\"a\":\"unterminated}",
        ] {
            assert!(!is_object(not.as_bytes()), "{not:?}");
        }
        // Not UTF-8.
        assert!(!is_object(b"{\"a\":\"\xff\"}"));
    }

    /// Differential check: mutations of valid records are never accepted by the fast
    /// path unless serde_json accepts them too.
    #[test]
    fn never_accepts_what_serde_json_rejects() {
        let seeds: &[&[u8]] = &[
            br#"{"id":12,"messages":[{"role":"user","content":"a \"quoted\" word\n"},{"role":"assistant","content":"ok \u00e9"}],"score":0.5,"ok":true,"x":null}"#,
            br#"{"a":{"b":{"c":[[],{},[1,[2,[3]]]]}},"s":"\\\/\b\f\r\t"}"#,
        ];
        let alphabet = b"{}[]\":,\\ -.0123456789eEtrufalsn\x01\xff\xc3\xa9u";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut accepted = 0;
        for round in 0..200_000 {
            let mut l = seeds[round % seeds.len()].to_vec();
            for _ in 0..1 + rnd(3) {
                let at = rnd(l.len() + 1);
                match rnd(3) {
                    0 if at < l.len() => {
                        l.remove(at);
                    }
                    1 if at < l.len() => l[at] = alphabet[rnd(alphabet.len())],
                    _ => l.insert(at, alphabet[rnd(alphabet.len())]),
                }
            }
            if is_object(&l) {
                accepted += 1;
                assert!(serde_ok(&l), "accepted {:?}", String::from_utf8_lossy(&l));
            }
        }
        assert!(accepted > 1000, "the mutations kept {accepted} valid lines");
    }
}
