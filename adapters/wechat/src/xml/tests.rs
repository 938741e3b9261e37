use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::vectors;

fn fields(doc: &str) -> Fields {
    parse(doc.as_bytes()).unwrap()
}

#[test]
fn every_inbound_vector_parses() {
    for doc in vectors::inbound() {
        let parsed = fields(doc);
        assert!(parsed.text("FromUserName").is_some(), "{doc}");
        assert!(parsed.text("MsgType").is_some(), "{doc}");
    }
}

#[test]
fn cdata_text_and_order_are_kept() {
    let f = fields(vectors::inbound()[0]);
    let names: Vec<&str> = f.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "ToUserName",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Content",
            "MsgId"
        ]
    );
    assert_eq!(f.text("Content"), Some("this is a test"));
    assert_eq!(f.text("MsgId"), Some("1234567890123456"));
}

#[test]
fn predefined_entities_and_char_refs_resolve() {
    let f = fields("<xml><A>a &lt;b&gt; &amp; &quot;c&apos; &#x4F60;&#22909;</A><B><![CDATA[&lt;]]></B></xml>");
    assert_eq!(f.text("A"), Some("a <b> & \"c' 你好"));
    assert_eq!(f.text("B"), Some("&lt;"), "CDATA is never unescaped");
}

#[test]
fn nested_elements_become_json_with_arrays_for_repeats() {
    let f = fields(
        "<xml><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item>\
         <item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo><Empty/></xml>",
    );
    let expected = json!({"Count": "2", "PicList": {"item": [{"PicMd5Sum": "a"}, {"PicMd5Sum": "b"}]}});
    assert_eq!(f.get("SendPicsInfo").unwrap().to_json(), expected);
    assert_eq!(f.text("Empty"), Some(""));
}

#[test]
fn layout_whitespace_and_declaration_are_ignored() {
    let f = fields("\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi -->\n<xml>\n  <A>1</A>\n</xml>\n");
    assert_eq!(f.len(), 1);
    assert_eq!(f.text("A"), Some("1"));
    assert!(fields("<xml></xml>").is_empty());
}

fn err(doc: &str) -> XmlError {
    parse(doc.as_bytes()).unwrap_err()
}

#[test]
fn doctype_and_entities_are_refused() {
    let xxe =
        r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><A>&xxe;</A></xml>"#;
    assert!(matches!(err(xxe), XmlError::Doctype));
    let laughs = r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><xml><A>&lol2;</A></xml>"#;
    assert!(matches!(err(laughs), XmlError::Doctype));
    assert!(matches!(err("<xml><A>&xxe;</A></xml>"), XmlError::Entity));
    assert!(matches!(err("<xml><A>&#0;</A></xml>"), XmlError::Entity));
    assert!(matches!(err("<xml><A>&#xZZ;</A></xml>"), XmlError::Entity));
    // A bare ENTITY declaration outside a DOCTYPE is not XML at all.
    assert!(parse(br#"<!ENTITY x "y"><xml/>"#).is_err());
}

#[test]
fn structural_errors_are_typed() {
    assert!(matches!(err(""), XmlError::Empty));
    assert!(matches!(err("   "), XmlError::Empty));
    assert!(matches!(err("<root><A>1</A></root>"), XmlError::Root));
    assert!(matches!(err("<xml></xml><xml></xml>"), XmlError::OutsideRoot));
    assert!(matches!(err("junk<xml></xml>"), XmlError::OutsideRoot));
    assert!(matches!(err("<xml><A>1</A>"), XmlError::Unclosed { name } if name == "xml"));
    assert!(matches!(err("<xml><A>1</B></xml>"), XmlError::Syntax(_)));
    assert!(matches!(err("<xml>text<A>1</A></xml>"), XmlError::MixedContent { .. }));
    assert!(matches!(err("<xml>text</xml>"), XmlError::MixedContent { .. }));
    assert!(matches!(err("<xml><A>1</A><A>2</A></xml>"), XmlError::DuplicateField { name } if name == "A"));
    assert!(matches!(err("<?php evil ?><xml/>"), XmlError::ProcessingInstruction));
    assert!(matches!(
        parse(b"<xml><A>\xff</A></xml>").unwrap_err(),
        XmlError::NotUtf8
    ));
}

#[test]
fn caps_are_enforced() {
    let deep = format!("<xml>{}{}</xml>", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
    assert!(matches!(err(&deep), XmlError::TooDeep));
    let wide = format!("<xml><L>{}</L></xml>", "<i/>".repeat(MAX_ELEMENTS));
    assert!(matches!(err(&wide), XmlError::TooManyElements));
    let big = format!("<xml><A>{}</A></xml>", "x".repeat(MAX_DOCUMENT_BYTES));
    assert!(matches!(err(&big), XmlError::TooLarge { .. }));
}

proptest! {
    #[test]
    fn never_panics_on_text(doc in "\\PC{0,300}") {
        let _ = parse(doc.as_bytes());
    }

    #[test]
    fn never_panics_on_xmlish(doc in "(<xml>|</xml>|<A>|</A>|<!\\[CDATA\\[|\\]\\]>|&amp;|&#|<!DOCTYPE|<\\?|[a-z ]){0,40}") {
        let _ = parse(doc.as_bytes());
    }

    #[test]
    fn never_panics_on_bytes(doc in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&doc);
    }
}
