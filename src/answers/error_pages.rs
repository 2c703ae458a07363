//! Error-page mode's pages: for each status from 400 to 599 and each format, the template that
//! answers it (a file of the pages directory, `NNN.ext` before `Nxx.ext`, else the built-in page
//! in the request's language, which `pages` writes), and the headers it goes out with. Which
//! status, format and language a request asks for is the router's.

use super::pages::{Builtin, Language};
use super::template::{Format, Template};
use crate::config::{self, PageKey};

/// Which request fields choose among the pages: issue 21's `X-Code, X-Format, Accept`, and
/// `Accept-Language` unless the language is pinned.
const VARY: &str = "Vary: X-Code, X-Format, Accept";

#[derive(Debug, Clone)]
pub(super) struct ErrorPages {
    builtin: Builtin,
    /// The pages of the directory, each once.
    files: Vec<Template>,
    /// Index into `files` of the page for `(status - 400) * 3 + format`; `NONE`: the built-in.
    chosen: Vec<u16>,
    /// `[error_pages] language`.
    language: Option<Language>,
    /// The headers of a built-in page, for `language * 3 + format`: `Content-Type`,
    /// `Content-Language`, `Vary`.
    builtin_heads: Vec<Vec<u8>>,
    /// The headers of a file's page, for each format: `Content-Type`, `Vary`.
    file_heads: Vec<Vec<u8>>,
}

/// What answers an error page.
pub(super) struct Chosen<'a> {
    pub(super) template: &'a Template,
    /// `Name: value\r\n` lines, `Content-Type` first.
    pub(super) headers: &'a [u8],
    /// The built-in page, whose words are the language's; a file's page says `{{reason}}` as the
    /// status line does.
    pub(super) builtin: bool,
}

const NONE: u16 = u16::MAX;

impl ErrorPages {
    pub(super) fn new(config: &config::ErrorPages) -> ErrorPages {
        let files = &config.files;
        let mut chosen = Vec::with_capacity(200 * Format::ALL.len());
        for code in 400..=599u16 {
            for format in Format::ALL {
                let file = |key: PageKey| {
                    files
                        .iter()
                        .position(|p| p.key == key && p.format == format)
                };
                let index =
                    file(PageKey::Status(code)).or_else(|| file(PageKey::Class(code / 100)));
                chosen.push(index.map_or(NONE, |i| i as u16));
            }
        }
        let vary = match config.language {
            Some(_) => format!("{VARY}\r\n"),
            None => format!("{VARY}, Accept-Language\r\n"),
        };
        let file_head = |format: Format| {
            let mut head = format.content_type_line().to_vec();
            head.extend_from_slice(vary.as_bytes());
            head
        };
        let builtin_heads = Language::ALL
            .into_iter()
            .flat_map(|language| {
                Format::ALL
                    .into_iter()
                    .map(move |format| (language, format))
            })
            .map(|(language, format)| {
                let mut head = format.content_type_line().to_vec();
                head.extend_from_slice(
                    format!("Content-Language: {}\r\n", language.tag()).as_bytes(),
                );
                head.extend_from_slice(vary.as_bytes());
                head
            })
            .collect();
        ErrorPages {
            builtin: Builtin::new(config.theme, config.show_details),
            files: files.iter().map(|p| p.template.clone()).collect(),
            chosen,
            language: config.language,
            builtin_heads,
            file_heads: Format::ALL.into_iter().map(file_head).collect(),
        }
    }

    /// The pinned language, if one is.
    pub(super) fn language(&self) -> Option<Language> {
        self.language
    }

    /// The page for `code` (400 to 599, as the router takes them) in `format`: a file's, else
    /// the built-in one in `language`.
    pub(super) fn page(&self, code: u16, format: Format, language: Language) -> Chosen<'_> {
        let f = Format::ALL.iter().position(|&x| x == format).unwrap_or(0);
        let file = code
            .checked_sub(400)
            .and_then(|c| self.chosen.get(usize::from(c) * Format::ALL.len() + f))
            .and_then(|&i| self.files.get(usize::from(i)));
        match file {
            Some(template) => Chosen {
                template,
                headers: &self.file_heads[f],
                builtin: false,
            },
            None => {
                let l = Language::ALL
                    .iter()
                    .position(|&x| x == language)
                    .unwrap_or(0);
                Chosen {
                    template: self.builtin.page(language, format),
                    headers: &self.builtin_heads[l * Format::ALL.len() + f],
                    builtin: true,
                }
            }
        }
    }
}
