//! The built-in error pages: for the configured theme, one page per language and format
//! (HTML, JSON, text), written and parsed into a [`Template`] at load, each saying the code, the
//! reason and one plain sentence in its language, and, with `[error_pages] show_details`, the
//! request id, the time and the ingress's headers that name the request. The code, reason and
//! sentence are the template's `{{code}}`, `{{reason}}` and `{{message}}`, filled per request
//! from [`Words`]' static text, so a page in any language renders without allocating. Which page
//! a request gets (a file of the pages directory first) is `error_pages`'.

pub mod language;
pub mod themes;
mod words;

pub use language::Language;
pub use themes::Theme;
pub(crate) use words::Words;

use super::template::{Format, Kind, Template};

/// The ingress headers the details show (ingress-nginx's custom-error protocol), as named.
const DETAIL_HEADERS: [(&str, &str); 4] = [
    ("X-Original-URI", "original_uri"),
    ("X-Namespace", "namespace"),
    ("X-Ingress-Name", "ingress_name"),
    ("X-Service-Name", "service_name"),
];

/// The built-in pages of one configuration.
#[derive(Debug, Clone)]
pub(crate) struct Builtin {
    /// The page for `language * 3 + format`, in [`Language::ALL`] and [`Format::ALL`]'s orders.
    pages: Vec<Template>,
}

impl Builtin {
    pub(crate) fn new(theme: Theme, show_details: bool) -> Builtin {
        let no_env = |_: &str| None;
        let pages = Language::ALL
            .into_iter()
            .flat_map(|language| {
                Format::ALL.into_iter().map(move |format| {
                    let text = source(theme, language, format, show_details);
                    // Every one parses (tested in `every_page_parses`); as text it would still
                    // serve.
                    Template::parse(&text, Kind::ErrorPage, &no_env)
                        .unwrap_or_else(|_| Template::literal(&text))
                })
            })
            .collect();
        Builtin { pages }
    }

    pub(crate) fn page(&self, language: Language, format: Format) -> &Template {
        let l = Language::ALL.iter().position(|&x| x == language);
        let f = Format::ALL.iter().position(|&x| x == format);
        let at = l.unwrap_or(0) * Format::ALL.len() + f.unwrap_or(0);
        &self.pages[at.min(self.pages.len() - 1)]
    }
}

/// The template text of one built-in page. The words are written as they are: none holds a
/// character that any format escapes (tested in `the_words_need_no_escaping`).
pub(crate) fn source(
    theme: Theme,
    language: Language,
    format: Format,
    show_details: bool,
) -> String {
    let words = Words::of(language);
    let tag = language.tag();
    let header_var = |name: &str| format!("{{{{header.{}}}}}", name.to_ascii_lowercase());
    match format {
        Format::Html => {
            let mut details = String::new();
            if show_details {
                details.push_str("<dl>\n");
                details.push_str(&format!(
                    "<dt>{}</dt><dd>{{{{request_id}}}}</dd>\n<dt>{}</dt><dd>{{{{time}}}}</dd>\n",
                    words.request_id, words.time
                ));
                for (header, _) in DETAIL_HEADERS {
                    details.push_str(&format!(
                        "<dt>{header}</dt><dd>{}</dd>\n",
                        header_var(header)
                    ));
                }
                details.push_str("</dl>\n");
            }
            format!(
                "<!DOCTYPE html>\n<html lang=\"{tag}\">\n<head>\n<meta charset=\"utf-8\">\n\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
                 <meta name=\"color-scheme\" content=\"light dark\">\n\
                 <meta name=\"robots\" content=\"noindex\">\n\
                 <title>{{{{code}}}} {{{{reason}}}}</title>\n<style>\n{}</style>\n</head>\n<body>\n\
                 <main>\n<h1><span class=\"code\">{{{{code}}}}</span> <span class=\"reason\">{{{{reason}}}}</span></h1>\n\
                 <p>{{{{message}}}}</p>\n{details}</main>\n</body>\n</html>\n",
                theme.css()
            )
        }
        Format::Json => {
            let mut details = String::new();
            if show_details {
                details.push_str(
                    ",\"details\":{\"request_id\":\"{{request_id}}\",\"time\":\"{{time}}\"",
                );
                for (header, key) in DETAIL_HEADERS {
                    details.push_str(&format!(",\"{key}\":\"{}\"", header_var(header)));
                }
                details.push('}');
            }
            format!(
                "{{\"code\":{{{{code}}}},\"reason\":\"{{{{reason}}}}\",\"message\":\"{{{{message}}}}\",\"lang\":\"{tag}\"{details}}}\n"
            )
        }
        Format::Text => {
            let mut text = "{{code}} {{reason}}\n{{message}}\n".to_string();
            if show_details {
                text.push_str(&format!(
                    "\n{}: {{{{request_id}}}}\n{}: {{{{time}}}}\n",
                    words.request_id, words.time
                ));
                for (header, _) in DETAIL_HEADERS {
                    text.push_str(&format!("{header}: {}\n", header_var(header)));
                }
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_parses() {
        let no_env = |_: &str| None;
        for theme in Theme::ALL {
            for language in Language::ALL {
                for format in Format::ALL {
                    for details in [false, true] {
                        let text = source(theme, language, format, details);
                        let parsed = Template::parse(&text, Kind::ErrorPage, &no_env);
                        assert!(
                            parsed.is_ok(),
                            "{theme:?} {language:?} {format:?}: {parsed:?}"
                        );
                        assert_eq!(text.contains("{{request_id}}"), details, "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_words_need_no_escaping() {
        let verbatim = |s: &str| {
            !s.chars()
                .any(|c| c.is_control() || "<>&\"'\\{}".contains(c))
        };
        for language in Language::ALL {
            let words = Words::of(language);
            for status in (400..=599).chain(words::LISTED) {
                assert!(verbatim(words.sentence(status)), "{language:?} {status}");
                assert!(
                    words.reason(status).is_none_or(verbatim),
                    "{language:?} {status}"
                );
            }
            assert!(
                verbatim(words.request_id) && verbatim(words.time),
                "{language:?}"
            );
        }
    }

    #[test]
    fn no_theme_asks_for_anything_over_the_network() {
        for theme in Theme::ALL {
            let css = theme.css();
            for needle in ["url(", "@import", "http:", "https:", "//", "@font-face"] {
                assert!(!css.contains(needle), "{theme:?} holds {needle}");
            }
            assert!(css.contains("prefers-color-scheme:dark"), "{theme:?}");
        }
    }
}
