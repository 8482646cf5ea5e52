//! Canonical XML 1.1 without comments (W3C REC xml-c14n11, 2008), for the two node-sets an
//! NVIDIA RIM's XML-DSig signature needs:
//! - the whole document minus one element's subtree (the enveloped-signature transform of a
//!   `Reference URI=""`), and
//! - one element's subtree as a document subset (`SignedInfo`), which inherits the namespace
//!   declarations of its ancestors and, per C14N 1.1, their `xml:lang` and `xml:space`.
//!
//! The parsed tree comes from roxmltree, which has already normalized line endings and
//! attribute values and expanded character references, as an XML processor must before
//! canonicalization. roxmltree does not keep prefixes, so they are read back from the source
//! text at each node's recorded position. `xml:base` inheritance (which needs URI
//! resolution) is refused rather than approximated.

use roxmltree::{Attribute, Node, NodeType};

const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum C14nError {
    #[error("canonicalization: {0}")]
    Unsupported(String),
    #[error("canonicalization: element nesting deeper than {0}")]
    TooDeep(usize),
}

/// Deepest element nesting rendered (RIMs nest four levels).
pub const MAX_DEPTH: usize = 64;

/// The document without comments, leaving out the subtree rooted at `excluded` (if any).
pub fn canonicalize_document(
    doc: &roxmltree::Document<'_>,
    excluded: Option<Node<'_, '_>>,
) -> Result<Vec<u8>, C14nError> {
    let mut out = Vec::new();
    let mut before_root = true;
    for child in doc.root().children() {
        match child.node_type() {
            NodeType::Element => {
                render_element(&mut out, child, None, excluded, 0)?;
                before_root = false;
            }
            NodeType::PI => {
                if !before_root {
                    out.push(b'\n');
                }
                render_pi(&mut out, child);
                if before_root {
                    out.push(b'\n');
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The subtree rooted at `apex`, as a document subset: the apex renders every namespace in
/// scope, plus the `xml:lang` / `xml:space` it inherits.
pub fn canonicalize_subtree(apex: Node<'_, '_>) -> Result<Vec<u8>, C14nError> {
    if !apex.is_element() {
        return Err(C14nError::Unsupported("apex is not an element".into()));
    }
    let mut out = Vec::new();
    render_element(&mut out, apex, None, None, 0)?;
    Ok(out)
}

/// Prefix of an element's qname, read from the source (`<ns0:Entity` → `ns0`).
fn element_prefix<'i>(node: Node<'_, 'i>) -> Option<&'i str> {
    let text = node.document().input_text();
    let start = node.range().start + 1;
    let rest = text.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    rest.get(..end)?.split_once(':').map(|(p, _)| p)
}

fn attribute_qname<'i>(node: Node<'_, 'i>, attr: &Attribute<'_, 'i>) -> &'i str {
    node.document()
        .input_text()
        .get(attr.range_qname())
        .unwrap_or_else(|| attr.name())
}

/// In-scope namespace declarations (prefix or "" for the default, URI), without `xml`.
fn in_scope(node: Node<'_, '_>) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = node
        .namespaces()
        .filter(|ns| ns.name() != Some("xml"))
        .map(|ns| (ns.name().unwrap_or("").to_string(), ns.uri().to_string()))
        .collect();
    list.sort();
    list.dedup_by(|a, b| a.0 == b.0);
    list
}

fn render_element(
    out: &mut Vec<u8>,
    node: Node<'_, '_>,
    output_parent: Option<Node<'_, '_>>,
    excluded: Option<Node<'_, '_>>,
    depth: usize,
) -> Result<(), C14nError> {
    if excluded == Some(node) {
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(C14nError::TooDeep(MAX_DEPTH));
    }
    let qname = match element_prefix(node) {
        Some(prefix) => format!("{prefix}:{}", node.tag_name().name()),
        None => node.tag_name().name().to_string(),
    };
    out.push(b'<');
    out.extend_from_slice(qname.as_bytes());

    // Namespace nodes: those not already rendered identically by the output parent.
    let mine = in_scope(node);
    let parents = output_parent.map(in_scope).unwrap_or_default();
    let parent_default = parents
        .iter()
        .find(|(p, _)| p.is_empty())
        .map(|(_, u)| u.as_str());
    let my_default = mine
        .iter()
        .find(|(p, _)| p.is_empty())
        .map(|(_, u)| u.as_str());
    if my_default.is_none_or(str::is_empty) && parent_default.is_some_and(|u| !u.is_empty()) {
        out.extend_from_slice(b" xmlns=\"\"");
    }
    for (prefix, uri) in &mine {
        if prefix.is_empty() && uri.is_empty() {
            continue;
        }
        if parents.iter().any(|(p, u)| p == prefix && u == uri) {
            continue;
        }
        if prefix.is_empty() {
            out.extend_from_slice(b" xmlns=\"");
        } else {
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(b"=\"");
        }
        escape_attribute(out, uri);
        out.push(b'"');
    }

    // Attributes, sorted by (namespace URI, local name); unqualified ones first.
    let mut attrs: Vec<(String, String, String, String)> = node
        .attributes()
        .map(|a| {
            (
                a.namespace().unwrap_or("").to_string(),
                a.name().to_string(),
                attribute_qname(node, &a).to_string(),
                a.value().to_string(),
            )
        })
        .collect();
    if output_parent.is_none() && node.parent_element().is_some() {
        inherit_xml_attributes(node, &mut attrs)?;
    }
    attrs.sort();
    for (_, _, qname, value) in &attrs {
        out.push(b' ');
        out.extend_from_slice(qname.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attribute(out, value);
        out.push(b'"');
    }
    out.push(b'>');

    for child in node.children() {
        match child.node_type() {
            NodeType::Element => render_element(out, child, Some(node), excluded, depth + 1)?,
            NodeType::Text => escape_text(out, child.text().unwrap_or_default()),
            NodeType::PI => render_pi(out, child),
            _ => {}
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(qname.as_bytes());
    out.push(b'>');
    Ok(())
}

/// C14N 1.1 section 2.4: the apex of a document subset takes `xml:lang` and `xml:space`
/// from the nearest ancestor that has them, unless it has its own.
fn inherit_xml_attributes(
    node: Node<'_, '_>,
    attrs: &mut Vec<(String, String, String, String)>,
) -> Result<(), C14nError> {
    for ancestor in node.ancestors().skip(1).filter(Node::is_element) {
        for a in ancestor.attributes() {
            if a.namespace() != Some(XML_NAMESPACE) {
                continue;
            }
            match a.name() {
                "lang" | "space"
                    if !attrs
                        .iter()
                        .any(|(ns, name, _, _)| ns == XML_NAMESPACE && name == a.name()) =>
                {
                    attrs.push((
                        XML_NAMESPACE.to_string(),
                        a.name().to_string(),
                        format!("xml:{}", a.name()),
                        a.value().to_string(),
                    ));
                }
                "base" => {
                    return Err(C14nError::Unsupported(
                        "xml:base on an ancestor of the signed element".into(),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn render_pi(out: &mut Vec<u8>, node: Node<'_, '_>) {
    if let Some(pi) = node.pi() {
        out.extend_from_slice(b"<?");
        out.extend_from_slice(pi.target.as_bytes());
        if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
            out.push(b' ');
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"?>");
    }
}

fn escape_text(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

fn escape_attribute(out: &mut Vec<u8>, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\t' => out.extend_from_slice(b"&#x9;"),
            '\n' => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_c14n(xml: &str) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        String::from_utf8(canonicalize_document(&doc, None).unwrap()).unwrap()
    }

    #[test]
    fn w3c_style_examples() {
        // Empty elements expand, attributes sort (unqualified first, then by namespace URI),
        // redundant namespace declarations disappear, comments go, character references
        // are normalized.
        let xml = "<?xml version=\"1.0\"?>\n<?pi  data?>\n<!--c--><doc xmlns:b=\"http://b\" xmlns:a=\"http://a\"><e1   /><e2 b:y=\"1\" a:x=\"2\" z=\"3\" xmlns:a=\"http://a\"/><e3>&lt;&amp;&gt;&#13;\"</e3><e4 v=\"&#9;&#10;&lt;&quot;'\"/></doc><!--after-->";
        assert_eq!(
            doc_c14n(xml),
            "<?pi data?>\n<doc xmlns:a=\"http://a\" xmlns:b=\"http://b\"><e1></e1><e2 z=\"3\" a:x=\"2\" b:y=\"1\"></e2><e3>&lt;&amp;&gt;&#xD;\"</e3><e4 v=\"&#x9;&#xA;&lt;&quot;'\"></e4></doc>"
        );
    }

    #[test]
    fn default_namespace_undeclaration() {
        let xml = "<a xmlns=\"http://x\"><b xmlns=\"\"><c/></b></a>";
        assert_eq!(
            doc_c14n(xml),
            "<a xmlns=\"http://x\"><b xmlns=\"\"><c></c></b></a>"
        );
    }

    #[test]
    fn subset_apex_inherits_namespaces_and_xml_lang() {
        let xml = "<r xmlns=\"http://r\" xmlns:p=\"http://p\" xml:lang=\"en\"><s xmlns:q=\"http://q\"><p:t a=\"1\"><u/></p:t></s><v xmlns:w=\"http://w\"/></r>";
        let doc = roxmltree::Document::parse(xml).unwrap();
        let t = doc
            .descendants()
            .find(|n| n.has_tag_name(("http://p", "t")))
            .unwrap();
        assert_eq!(
            String::from_utf8(canonicalize_subtree(t).unwrap()).unwrap(),
            "<p:t xmlns=\"http://r\" xmlns:p=\"http://p\" xmlns:q=\"http://q\" a=\"1\" xml:lang=\"en\"><u></u></p:t>"
        );
    }

    #[test]
    fn xml_base_inheritance_is_refused() {
        let doc = roxmltree::Document::parse("<r xml:base=\"http://b/\"><s/></r>").unwrap();
        let s = doc.root_element().first_element_child().unwrap();
        assert!(canonicalize_subtree(s).is_err());
    }

    #[test]
    fn excluded_subtree_is_left_out() {
        let xml = "<r>\n  <keep/>\n  <drop><x/></drop>\n</r>";
        let doc = roxmltree::Document::parse(xml).unwrap();
        let drop = doc.descendants().find(|n| n.has_tag_name("drop")).unwrap();
        assert_eq!(
            String::from_utf8(canonicalize_document(&doc, Some(drop)).unwrap()).unwrap(),
            "<r>\n  <keep></keep>\n  \n</r>"
        );
    }
}
