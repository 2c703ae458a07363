//! Status codes: the reason phrase of every status the IANA HTTP Status Code Registry names, and
//! [`Rejection`], the statuses the request stream rejects a request with. What a route answers is
//! `answers`'s; this file only knows the numbers and their names.

/// Why a request gets a fixed error answer instead of a route's. Each one closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    BadRequest,
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    HeadersTooLarge,
    NotImplemented,
    ServiceUnavailable,
    VersionNotSupported,
}

impl Rejection {
    pub const ALL: [Rejection; 8] = [
        Rejection::BadRequest,
        Rejection::RequestTimeout,
        Rejection::PayloadTooLarge,
        Rejection::UriTooLong,
        Rejection::HeadersTooLarge,
        Rejection::NotImplemented,
        Rejection::ServiceUnavailable,
        Rejection::VersionNotSupported,
    ];

    pub fn status(self) -> u16 {
        match self {
            Rejection::BadRequest => 400,
            Rejection::RequestTimeout => 408,
            Rejection::PayloadTooLarge => 413,
            Rejection::UriTooLong => 414,
            Rejection::HeadersTooLarge => 431,
            Rejection::NotImplemented => 501,
            Rejection::ServiceUnavailable => 503,
            Rejection::VersionNotSupported => 505,
        }
    }
}

/// The registry's name for `status`, or the empty phrase RFC 9112 4 allows for a status the
/// registry does not name (`HTTP/1.1 599 `). 418 keeps the name RFC 9110 15.5.19 reserves it
/// under, which clients print.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_statuses_have_their_names_and_others_none() {
        assert_eq!(reason_phrase(409), "Conflict");
        assert_eq!(reason_phrase(422), "Unprocessable Content");
        assert_eq!(reason_phrase(451), "Unavailable For Legal Reasons");
        assert_eq!(reason_phrase(507), "Insufficient Storage");
        assert_eq!(reason_phrase(205), "Reset Content");
        assert_eq!(reason_phrase(599), "");
        assert_eq!(reason_phrase(306), "");
        for rejection in Rejection::ALL {
            assert!(!reason_phrase(rejection.status()).is_empty());
        }
    }
}
