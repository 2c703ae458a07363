//! Error-page mode's pages: for each status from 400 to 599 and each format, the template that
//! answers it (a file of the pages directory, `NNN.ext` before `Nxx.ext`, else the built-in page).
//! Which status and format a request asks for is the router's.

use super::template::{Format, Kind, Template};
use crate::config::{PageFile, PageKey};

/// The built-in pages, used where the directory has neither `NNN.ext` nor `Nxx.ext`.
pub(super) const BUILTIN_PAGES: [(Format, &str); 3] = [
    (
        Format::Html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{{code}} {{reason}}</title></head>\n<body><h1>{{code}} {{reason}}</h1></body>\n</html>\n",
    ),
    (
        Format::Json,
        "{\"code\":{{code}},\"message\":\"{{reason}}\"}\n",
    ),
    (Format::Text, "{{code}} {{reason}}\n"),
];

#[derive(Debug, Clone)]
pub(super) struct ErrorPages {
    templates: Vec<Template>,
    /// Index into `templates` of the page for `(status - 400) * 3 + format`.
    chosen: Vec<u16>,
}

impl ErrorPages {
    pub(super) fn new(files: &[PageFile]) -> ErrorPages {
        let no_env = |_: &str| None;
        // The built-in pages, then each file's page once: `chosen` points into them.
        let templates: Vec<Template> = BUILTIN_PAGES
            .iter()
            .map(|(_, text)| {
                // They parse (tested in `builtin_pages_parse`); as text they would still serve.
                Template::parse(text, Kind::ErrorPage, &no_env)
                    .unwrap_or_else(|_| Template::literal(text))
            })
            .chain(files.iter().map(|p| p.template.clone()))
            .collect();
        let mut chosen = Vec::with_capacity(200 * Format::ALL.len());
        for code in 400..=599u16 {
            for (f, format) in Format::ALL.into_iter().enumerate() {
                let file = |key: PageKey| {
                    files
                        .iter()
                        .position(|p| p.key == key && p.format == format)
                };
                let index = match file(PageKey::Status(code))
                    .or_else(|| file(PageKey::Class(code / 100)))
                {
                    Some(i) => BUILTIN_PAGES.len() + i,
                    None => f,
                };
                chosen.push(index as u16);
            }
        }
        ErrorPages { templates, chosen }
    }

    /// The page for `code` (400 to 599, as the router takes them) in `format`; the built-in
    /// page of the format for any other code.
    pub(super) fn page(&self, code: u16, format: Format) -> &Template {
        let f = Format::ALL.iter().position(|&x| x == format).unwrap_or(0);
        let chosen = code
            .checked_sub(400)
            .and_then(|c| self.chosen.get(usize::from(c) * Format::ALL.len() + f));
        let index = chosen.map_or(f, |&i| usize::from(i));
        &self.templates[index.min(self.templates.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pages_parse() {
        for (_, text) in BUILTIN_PAGES {
            let no_env = |_: &str| None;
            assert!(
                Template::parse(text, Kind::ErrorPage, &no_env).is_ok(),
                "{text}"
            );
        }
    }
}
