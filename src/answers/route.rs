//! One prepared route: everything a configured route can answer, built once at load and kept
//! together, so that stamping a new `Date` or adding an answer cannot miss one of them: its answer
//! (or the statuses it picks by weight), its validators and 304, its template or echo, its 405
//! and its answer to `OPTIONS`. Which route a request reaches is the router's.

use super::conditional::Validators;
use super::echo;
use super::head::{self, DATE_LEN};
use super::prebuilt::Answer;
use super::template::{Escape, Template};
use crate::config::Route;
use crate::http::method_bit;
use crate::http::status::reason_phrase;

/// A templated answer's fixed parts.
#[derive(Debug, Clone)]
pub(super) struct Rendered {
    pub(super) status: u16,
    pub(super) reason: String,
    /// `Name: value\r\n` lines, `Content-Type` first.
    pub(super) headers: Vec<u8>,
    pub(super) template: Template,
    pub(super) escape: Escape,
}

#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) route: Route,
    pub(super) answer: Answer,
    /// For a route that picks its status by weight: (the cumulative weight up to and including
    /// this status, its answer).
    pub(super) weighted: Vec<(u32, Answer)>,
    /// For an answer that has validators (a 2xx that is not templated or weighted).
    pub(super) validators: Option<Validators>,
    /// For a templated route.
    pub(super) rendered: Option<Rendered>,
    /// For an echo route.
    pub(super) echo: Option<echo::Fixed>,
    /// The route's methods, as `http::method_bit`s (a method it lists that no request can have
    /// is in `Allow` only).
    pub(super) methods: u16,
    pub(super) not_allowed: Answer,
    pub(super) options: Answer,
}

impl Prepared {
    pub(super) fn new(route: &Route) -> Prepared {
        let reason_of =
            |status: u16| match route.reason.as_deref().filter(|_| status == route.status) {
                Some(reason) => reason.to_string(),
                None => reason_phrase(status).to_string(),
            };
        let validators = Validators::of(route);
        let mut headers = route.headers.clone();
        if let Some(v) = &validators {
            headers.extend(v.headers());
        }
        let answer = Answer::new(
            route.status,
            &reason_of(route.status),
            &headers,
            route.body.clone(),
        );
        let mut total = 0;
        let weighted = route
            .statuses
            .iter()
            .map(|&(status, weight)| {
                total += weight;
                let answer = Answer::new(
                    status,
                    &reason_of(status),
                    &route.headers,
                    route.body.clone(),
                );
                (total, answer)
            })
            .collect();
        let rendered = route.template.clone().map(|template| Rendered {
            status: route.status,
            reason: reason_of(route.status),
            headers: head::lines(&route.headers),
            template,
            escape: Escape::for_content_type(route.content_type()),
        });
        let echo = route
            .echo
            .then(|| echo::Fixed::new(route, reason_of(route.status)));
        let allows = allow(route.methods.iter().map(String::as_str));
        Prepared {
            route: route.clone(),
            answer,
            weighted,
            validators,
            rendered,
            echo,
            methods: route.methods.iter().fold(0, |set, m| set | method_bit(m)),
            not_allowed: Answer::plain(405, &allows),
            options: no_content(&allows),
        }
    }

    /// The status `random` picks among the weighted ones, if the route has them.
    pub(super) fn pick(&self, random: impl FnOnce() -> u64) -> Option<usize> {
        let &(total, _) = self.weighted.last()?;
        let point = (random() % u64::from(total)) as u32;
        Some(
            self.weighted
                .iter()
                .position(|&(end, _)| point < end)
                .unwrap_or(0),
        )
    }

    pub(super) fn stamp(&mut self, date: &[u8; DATE_LEN]) {
        let answers = [&mut self.answer, &mut self.not_allowed, &mut self.options]
            .into_iter()
            .chain(self.weighted.iter_mut().map(|(_, a)| a))
            .chain(self.validators.iter_mut().map(|v| &mut v.not_modified));
        for answer in answers {
            answer.stamp(date);
        }
    }
}

/// A 204 with `headers`, for `OPTIONS`.
pub(super) fn no_content(headers: &[(String, String)]) -> Answer {
    Answer::new(204, reason_phrase(204), headers, Vec::new())
}

/// An `Allow` header listing `methods` once each, in order, with `OPTIONS` last.
pub(super) fn allow<'a>(methods: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut listed: Vec<&str> = Vec::new();
    for method in methods.into_iter().chain(["OPTIONS"]) {
        if !listed.contains(&method) {
            listed.push(method);
        }
    }
    vec![("Allow".to_string(), listed.join(", "))]
}
