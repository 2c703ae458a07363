//! The looks of the built-in HTML error page: each theme is one style sheet, inlined into the
//! page, that lays out the same markup (`mod.rs` writes it) for a 360 px phone up to a desktop,
//! light and dark by `prefers-color-scheme`. No theme loads anything: no font, image or link,
//! so a page works offline and under any `Content-Security-Policy` that allows inline style.
//! `tests/browser/` draws each one in Chromium and measures its contrast.

/// `[error_pages] theme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Close to the page servers have always shown: a heading and a line of text.
    Plain,
    /// A card in the middle of the screen, the code large in the accent colour.
    #[default]
    Card,
    /// A terminal's look, in monospace.
    Mono,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Plain, Theme::Card, Theme::Mono];

    /// The name `[error_pages] theme` and `--error-pages-theme` take.
    pub fn name(self) -> &'static str {
        match self {
            Theme::Plain => "plain",
            Theme::Card => "card",
            Theme::Mono => "mono",
        }
    }

    pub fn from_name(name: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The style sheet.
    pub(crate) fn css(self) -> &'static str {
        match self {
            Theme::Plain => PLAIN,
            Theme::Card => CARD,
            Theme::Mono => MONO,
        }
    }
}

/// Words that do not fit a phone's width break anywhere rather than scroll the page sideways
/// (a German compound, a long URI in the details).
const PLAIN: &str = "\
body{margin:2rem 1rem;font-family:sans-serif;line-height:1.5;background:#fff;color:#111}
@media (prefers-color-scheme:dark){body{background:#121212;color:#ececec}}
h1{font-size:1.75rem;line-height:1.25;margin:0 0 1rem}
h1,p,dd{overflow-wrap:anywhere}
p{margin:0 0 1rem}
dl{font-family:monospace;font-size:.9rem;margin:1.5rem 0 0}
dt{font-weight:bold}
dd{margin:0 0 .5rem 1.5rem}
dd:empty::after{content:\"-\"}
";

const CARD: &str = "\
:root{--bg:#f3f4f6;--panel:#fff;--fg:#1c2024;--muted:#4d5661;--accent:#0a58ca;--line:#dde1e6}
@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--panel:#171b21;--fg:#e8ebef;--muted:#a9b2bc;--accent:#78b0ff;--line:#2a3039}}
*{box-sizing:border-box}
html{background:var(--bg);color:var(--fg)}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:24px 16px;font:16px/1.55 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",\"Noto Sans CJK JP\",\"Hiragino Sans\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif}
main{width:100%;max-width:560px;background:var(--panel);border:1px solid var(--line);border-radius:16px;padding:40px 36px;box-shadow:0 1px 2px rgba(0,0,0,.05),0 12px 32px rgba(0,0,0,.07)}
h1{margin:0 0 12px;font-size:1.5rem;line-height:1.3;font-weight:650}
.code{display:block;margin-bottom:14px;font-size:4.5rem;line-height:1;font-weight:750;letter-spacing:-.03em;color:var(--accent);font-variant-numeric:tabular-nums}
p{margin:0;font-size:1.0625rem;color:var(--muted)}
h1,p,dd{overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:6px 16px;margin:28px 0 0;padding-top:20px;border-top:1px solid var(--line);font-size:.875rem}
dt{color:var(--muted)}
dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\",monospace}
dd:empty::after{content:\"\\2014\";color:var(--muted)}
@media (max-width:480px){main{padding:28px 22px;border-radius:12px}.code{font-size:3.5rem}dl{grid-template-columns:minmax(0,1fr);gap:2px}dd{margin-bottom:8px}}
";

const MONO: &str = "\
:root{--bg:#fbfaf4;--fg:#1f2328;--muted:#515b65;--accent:#116329;--line:#d6d2c2}
@media (prefers-color-scheme:dark){:root{--bg:#0b0e0c;--fg:#d8e1da;--muted:#9ca9a1;--accent:#5ad16a;--line:#28322c}}
html{background:var(--bg);color:var(--fg)}
body{margin:0;padding:14vh 20px 32px;font:15px/1.65 ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\",\"Noto Sans Mono CJK JP\",monospace}
main{max-width:72ch;margin:0 auto}
h1{margin:0 0 16px;font-size:1.25rem;line-height:1.4;font-weight:700}
h1::before{content:\"$ \";color:var(--muted)}
.code{color:var(--accent)}
p{margin:0}
p::before{content:\"> \";color:var(--muted)}
h1,p,dd{overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 14px;margin:28px 0 0;padding-top:14px;border-top:1px dashed var(--line);font-size:.875rem}
dt{color:var(--muted)}
dt::after{content:\":\"}
dd{margin:0}
dd:empty::after{content:\"-\";color:var(--muted)}
@media (max-width:480px){dl{grid-template-columns:minmax(0,1fr);gap:0}dd{margin-bottom:8px}}
";
