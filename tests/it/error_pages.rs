//! The built-in error pages over the wire: each theme, each language chosen by `Accept-Language`
//! (q-values, no match) or pinned, `Content-Language` and `Vary`, the details block on and off
//! with hostile values escaped, a custom page winning with the built-in sentence, and the JSON
//! and text formats carrying the same sentence. How they look in a browser is
//! `tests/browser/check.py`'s.

use crate::common::{body_of, check, header, status_of, Server};

/// Each language's reason and sentence for a 404, written here again as the reader sees them.
const NOT_FOUND: [(&str, &str, &str); 7] = [
    (
        "en",
        "Not Found",
        "The page you asked for is not here; check the address or go back to the home page.",
    ),
    (
        "de",
        "Nicht gefunden",
        "Die angeforderte Seite gibt es hier nicht; prüfen Sie die Adresse oder gehen Sie zur Startseite.",
    ),
    (
        "fr",
        "Page introuvable",
        "La page demandée n’existe pas ici\u{a0}; vérifiez l’adresse ou revenez à la page d’accueil.",
    ),
    (
        "es",
        "No encontrado",
        "La página que busca no está aquí; revise la dirección o vuelva a la página de inicio.",
    ),
    (
        "pt",
        "Não encontrado",
        "A página pedida não está aqui; verifique o endereço ou volte à página inicial.",
    ),
    (
        "ja",
        "ページが見つかりません",
        "お探しのページはここにはありません。アドレスを確認するか、トップページに戻ってください。",
    ),
    (
        "zh",
        "页面未找到",
        "您要找的页面不在这里，请检查地址或返回首页。",
    ),
];

/// A rule only each theme's style sheet has.
const THEME_MARKS: [(&str, &str); 3] = [
    ("plain", "body{margin:2rem 1rem;font-family:sans-serif"),
    ("card", "--panel:#fff"),
    ("mono", "h1::before{content:\"$ \""),
];

fn page(server: &Server, headers: &str) -> String {
    server.exchange(
        format!("GET /any HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn language_of(response: &str) -> Option<&str> {
    header(response, "content-language")
}

#[test]
fn each_theme_says_each_language() {
    let themes = [
        Server::start(&["--error-pages", "--error-pages-theme", "plain"]),
        Server::start_with_env(
            &["--error-pages"],
            &[("RESPONDER_ERROR_PAGES_THEME", "card")],
        ),
        Server::with_config("[error_pages]\nenabled = true\ntheme = \"mono\"\n", &[]),
    ];
    for (server, (theme, mark)) in themes.iter().zip(THEME_MARKS) {
        for (lang, reason, sentence) in NOT_FOUND {
            let got = page(
                server,
                &format!("X-Code: 404\r\nAccept-Language: {lang}\r\n"),
            );
            assert_eq!(status_of(&got), 404, "{got}");
            assert!(got.starts_with("HTTP/1.1 404 Not Found\r\n"), "{got}");
            assert_eq!(language_of(&got), Some(lang), "{theme}");
            let body = body_of(&got);
            assert!(
                body.contains(&format!("<html lang=\"{lang}\">")),
                "{theme} {lang}"
            );
            assert!(
                body.contains(&format!("<title>404 {reason}</title>")),
                "{theme} {lang}: {body}"
            );
            assert!(
                body.contains(&format!("<p>{sentence}</p>")),
                "{theme} {lang}"
            );
            for (other, other_mark) in THEME_MARKS {
                assert_eq!(
                    body.contains(other_mark),
                    other == theme,
                    "{theme} has {other}'s look"
                );
            }
            assert!(body.contains(mark));
        }
    }
    // The default is the card; an unknown theme is refused, naming the ones there are.
    let default = Server::start(&["--error-pages"]);
    assert!(body_of(&page(&default, "X-Code: 503\r\n")).contains(THEME_MARKS[1].1));
    let (ok, said) = check("[error_pages]\ntheme = \"fancy\"\n");
    assert!(
        !ok && said.contains("`fancy`") && said.contains("`card`"),
        "{said}"
    );
}

#[test]
fn accept_language_chooses_by_quality_and_falls_back_to_english() {
    let server = Server::start(&["--error-pages"]);
    let cases = [
        ("Accept-Language: fr;q=0.5, de;q=0.9\r\n", "de"),
        ("Accept-Language: pt-BR, pt;q=0.9, en;q=0.8\r\n", "pt"),
        ("Accept-Language: de;q=0, ja;q=0.1, nl\r\n", "ja"),
        ("Accept-Language: zh-Hans-CN;q=0.7, es-419;q=0.7\r\n", "zh"),
        ("Accept-Language: nl, sv;q=0.8\r\n", "en"),
        ("Accept-Language: de;q=0\r\n", "en"),
        ("", "en"),
    ];
    for (ask, lang) in cases {
        let got = page(&server, &format!("X-Code: 503\r\n{ask}"));
        assert_eq!(status_of(&got), 503, "{got}");
        assert_eq!(language_of(&got), Some(lang), "{ask:?}");
        assert!(
            body_of(&got).contains(&format!("<html lang=\"{lang}\">")),
            "{ask:?}"
        );
        assert_eq!(
            header(&got, "vary"),
            Some("X-Code, X-Format, Accept, Accept-Language"),
            "{got}"
        );
    }
    // A routed answer does not vary with them.
    let routed = page(&server, "Accept-Language: de\r\n");
    assert_eq!(status_of(&routed), 200);
    assert_eq!(header(&routed, "vary"), None);
    assert_eq!(language_of(&routed), None);
}

#[test]
fn a_pinned_language_ignores_accept_language_and_leaves_it_out_of_vary() {
    let server = Server::with_config("[error_pages]\nenabled = true\nlanguage = \"es\"\n", &[]);
    let got = page(&server, "X-Code: 404\r\nAccept-Language: de, en;q=0.5\r\n");
    assert_eq!(language_of(&got), Some("es"));
    assert!(
        body_of(&got).contains("<title>404 No encontrado</title>"),
        "{got}"
    );
    assert_eq!(header(&got, "vary"), Some("X-Code, X-Format, Accept"));
    let (ok, said) = check("[error_pages]\nlanguage = \"tlh\"\n");
    assert!(
        !ok && said.contains("`tlh`") && said.contains("`zh`"),
        "{said}"
    );
}

#[test]
fn details_show_the_request_escaped_and_only_when_asked() {
    let hostile = "/a\"b'<script>alert(1)</script>&x=\ty";
    let ingress = format!(
        "X-Original-URI: {hostile}\r\nX-Namespace: shop<b>\r\nX-Ingress-Name: web\r\n\
         X-Service-Name: cart\r\nX-Request-ID: 0af7651916cd43dd\r\n"
    );
    let on = Server::with_config("[error_pages]\nenabled = true\nshow_details = true\n", &[]);
    let html = body_of(&page(&on, &format!("X-Code: 502\r\n{ingress}"))).to_string();
    assert!(
        html.contains(
            "<dt>X-Original-URI</dt><dd>/a&quot;b&#39;&lt;script&gt;alert(1)&lt;/script&gt;&amp;x=y</dd>"
        ),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    assert!(
        html.contains("<dt>X-Namespace</dt><dd>shop&lt;b&gt;</dd>"),
        "{html}"
    );
    assert!(
        html.contains("<dt>X-Service-Name</dt><dd>cart</dd>"),
        "{html}"
    );
    assert!(
        html.contains("<dt>Request ID</dt><dd>0af7651916cd43dd</dd>"),
        "{html}"
    );
    let time_at = html.find("<dt>Time</dt><dd>").map(|at| at + 17).unwrap();
    let time = &html[time_at..time_at + 20];
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");

    let german = body_of(&page(
        &on,
        &format!("X-Code: 502\r\nAccept-Language: de\r\n{ingress}"),
    ))
    .to_string();
    assert!(
        german.contains("<dt>Anfrage-ID</dt><dd>0af7651916cd43dd</dd>"),
        "{german}"
    );

    let json = page(
        &on,
        &format!("X-Code: 502\r\nX-Format: application/json\r\n{ingress}"),
    );
    let value: serde_json::Value = serde_json::from_str(body_of(&json)).unwrap();
    assert_eq!(
        value["details"]["original_uri"],
        "/a\"b'<script>alert(1)</script>&x=\ty"
    );
    assert_eq!(value["details"]["namespace"], "shop<b>");
    assert_eq!(value["details"]["request_id"], "0af7651916cd43dd");
    assert_eq!(value["details"]["ingress_name"], "web");

    let text = body_of(&page(
        &on,
        &format!("X-Code: 502\r\nAccept: text/plain\r\n{ingress}"),
    ))
    .to_string();
    assert!(
        text.contains("\nX-Original-URI: /a\"b'<script>alert(1)</script>&x=y\n"),
        "{text:?}"
    );

    let off = Server::start(&["--error-pages"]);
    let plain = page(&off, &format!("X-Code: 502\r\n{ingress}"));
    let body = body_of(&plain);
    assert!(
        !body.contains("0af7651916cd43dd") && !body.contains("X-Original-URI"),
        "{body}"
    );
    assert!(!body.contains("<dl>"), "{body}");
    let json = page(
        &off,
        &format!("X-Code: 502\r\nAccept: application/json\r\n{ingress}"),
    );
    let value: serde_json::Value = serde_json::from_str(body_of(&json)).unwrap();
    assert!(value.get("details").is_none(), "{value}");
}

#[test]
fn json_and_text_carry_the_sentence_in_the_readers_language() {
    let server = Server::start(&["--error-pages"]);
    for (lang, reason, sentence) in NOT_FOUND {
        let json = page(
            &server,
            &format!("X-Code: 404\r\nAccept: application/json\r\nAccept-Language: {lang}\r\n"),
        );
        assert_eq!(header(&json, "content-type"), Some("application/json"));
        assert_eq!(language_of(&json), Some(lang));
        let value: serde_json::Value = serde_json::from_str(body_of(&json)).unwrap();
        assert_eq!(value["code"], 404);
        assert_eq!(value["reason"], reason);
        assert_eq!(value["message"], sentence);
        assert_eq!(value["lang"], lang);

        let text = page(
            &server,
            &format!("X-Code: 404\r\nX-Format: text/plain\r\nAccept-Language: {lang}\r\n"),
        );
        assert_eq!(language_of(&text), Some(lang));
        assert_eq!(body_of(&text), format!("404 {reason}\n{sentence}\n"));
    }
    // A status without words of its own: the English reason and its class's sentence.
    let teapot = page(
        &server,
        "X-Code: 418\r\nAccept: text/plain\r\nAccept-Language: de\r\n",
    );
    assert_eq!(
        body_of(&teapot),
        "418 I'm a teapot\nDie Anfrage konnte nicht beantwortet werden; prüfen Sie die Adresse und versuchen Sie es erneut.\n"
    );
}

#[test]
fn a_custom_page_wins_and_may_say_the_built_in_sentence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("404.html"),
        "<html lang=\"{{lang}}\"><p>{{code}} {{reason}}: {{message}}</p></html>\n",
    )
    .unwrap();
    let toml = format!(
        "[error_pages]\nenabled = true\ndir = \"{}\"\n",
        dir.path().display()
    );
    let server = Server::with_config(&toml, &[]);
    let custom = page(&server, "X-Code: 404\r\nAccept-Language: fr\r\n");
    assert_eq!(
        body_of(&custom),
        "<html lang=\"fr\"><p>404 Not Found: La page demandée n’existe pas ici\u{a0}; vérifiez l’adresse ou revenez à la page d’accueil.</p></html>\n"
    );
    // Its author's language is not known: no Content-Language, but it varies as any page does.
    assert_eq!(language_of(&custom), None);
    assert_eq!(
        header(&custom, "vary"),
        Some("X-Code, X-Format, Accept, Accept-Language")
    );
    // No 503.html and no 5xx.html: the built-in page, in the reader's language.
    let builtin = page(&server, "X-Code: 503\r\nAccept-Language: fr\r\n");
    assert_eq!(language_of(&builtin), Some("fr"));
    assert!(
        body_of(&builtin).contains("<title>503 Service indisponible</title>"),
        "{builtin}"
    );
}
