//! A small HTML builder that escapes by construction.
//!
//! Why our own rather than askama or maud: the console has a dozen pages of tables, and a
//! builder of ~100 lines gives the one property that matters here (no way to write
//! unescaped text) without a proc-macro crate, template files or a second escaping
//! convention. Tag and attribute names are `&'static str` (they come from this source, never
//! from data); text and attribute values go through [`escape`]; markup literals can only be
//! `&'static str`.

use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (other than tab and newline) have no business in a page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Percent-encodes one URL path segment or query value (everything but RFC 3986 unreserved
/// characters), so a node id like `a/b?c` stays one segment.
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Markup under construction. Only this module's methods write into it.
#[derive(Debug, Default, Clone)]
pub struct Html(String);

impl Html {
    pub fn new() -> Html {
        Html(String::with_capacity(4096))
    }

    /// Escaped text.
    pub fn text(&mut self, text: &str) -> &mut Html {
        escape_into(&mut self.0, text);
        self
    }

    /// Markup written in this source file (never data).
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// `<tag a="v" ...>` with every value escaped.
    pub fn open(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) -> &mut Html {
        self.0.push('<');
        self.0.push_str(tag);
        for (name, value) in attrs {
            self.0.push(' ');
            self.0.push_str(name);
            self.0.push_str("=\"");
            escape_into(&mut self.0, value);
            self.0.push('"');
        }
        self.0.push('>');
        self
    }

    pub fn close(&mut self, tag: &'static str) -> &mut Html {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// `<tag attrs>text</tag>`.
    pub fn elem(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, &str)],
        text: &str,
    ) -> &mut Html {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// `<a href="href">text</a>`; `href` must be built from [`url_part`]-encoded pieces.
    pub fn link(&mut self, href: &str, text: &str) -> &mut Html {
        self.elem("a", &[("href", href)], text)
    }

    /// A table cell holding escaped text.
    pub fn td(&mut self, text: &str) -> &mut Html {
        self.elem("td", &[], text)
    }

    /// A header row of escaped labels.
    pub fn header_row(&mut self, labels: &[&str]) -> &mut Html {
        self.raw("<thead><tr>");
        for label in labels {
            self.elem("th", &[], label);
        }
        self.raw("</tr></thead>")
    }

    /// A status badge: the class comes from a fixed list, the text is escaped.
    pub fn badge(&mut self, status: &str) -> &mut Html {
        let class = match status {
            "trusted" | "pass" | "affirming" | "verified" | "added" => "badge good",
            "untrusted" | "fail" | "contraindicated" | "failed" | "removed" => "badge bad",
            "warning" | "changed" => "badge warn",
            _ => "badge",
        };
        self.elem("span", &[("class", class)], status)
    }

    /// Appends markup built elsewhere (already escaped by construction).
    pub fn append(&mut self, other: &Html) -> &mut Html {
        self.0.push_str(&other.0);
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut html = Html::new();
        html.open("a", &[("href", "/x\"onmouseover='1'")])
            .text("<script>alert(1)</script> & co")
            .close("a");
        assert_eq!(
            html.as_str(),
            "<a href=\"/x&quot;onmouseover=&#39;1&#39;\">&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</a>"
        );
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(escape("a\u{0}b\u{1b}c\nd"), "a\u{FFFD}b\u{FFFD}c\nd");
    }

    #[test]
    fn url_parts_keep_one_segment() {
        assert_eq!(url_part("gpu-a_1.x~"), "gpu-a_1.x~");
        assert_eq!(url_part("a/b?c=<d>"), "a%2Fb%3Fc%3D%3Cd%3E");
        assert_eq!(url_part("é"), "%C3%A9");
    }
}
