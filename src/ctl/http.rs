//! The metrics HTTP endpoint's request handling (cold): just enough HTTP/1.1 for a
//! Prometheus scraper, curl and a browser. Requests are parsed with `httparse`; each
//! connection carries one request and is closed after the response.

/// Largest request head accepted.
pub const MAX_REQUEST: usize = 16 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The Accept header (empty when absent).
    pub accept: String,
}

/// Outcome of parsing what has arrived so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// A complete request.
    Request(HttpRequest),
    /// Not HTTP, or too large: answer with this status and close.
    Bad(u16),
}

/// Parses the request head in `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let accept = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("accept"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .unwrap_or_default();
            let path = req.path.unwrap_or("/");
            let path = path.split('?').next().unwrap_or("/").to_string();
            Parsed::Request(HttpRequest {
                method: req.method.unwrap_or("").to_string(),
                path,
                accept,
            })
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => Parsed::Partial,
        Ok(httparse::Status::Partial) => Parsed::Bad(431),
        Err(httparse::Error::TooManyHeaders) => Parsed::Bad(431),
        Err(_) => Parsed::Bad(400),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete response (`Connection: close`); `head_only` for HEAD requests.
pub fn response(code: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n{}\r\n",
        reason(code),
        body.len(),
        if code == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A plain-text error response.
pub fn error(code: u16) -> Vec<u8> {
    let body = format!("{code} {}\n", reason(code));
    response(code, "text/plain; charset=utf-8", body.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_complete_and_bad() {
        assert_eq!(parse(b"GET /metr"), Parsed::Partial);
        let p = parse(
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text\r\n\r\n",
        );
        assert_eq!(
            p,
            Parsed::Request(HttpRequest {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: "application/openmetrics-text".into()
            })
        );
        assert_eq!(parse(b"\x00\x01garbage\r\n\r\n"), Parsed::Bad(400));
        let big = vec![b'a'; MAX_REQUEST + 1];
        let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
        req.extend_from_slice(&big);
        assert_eq!(parse(&req), Parsed::Bad(431));
    }

    #[test]
    fn responses_have_length_and_close() {
        let r = String::from_utf8(response(200, "text/plain", b"hello", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 5\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\nhello"));
        let h = String::from_utf8(response(200, "text/plain", b"hello", true)).unwrap();
        assert!(h.ends_with("\r\n\r\n"));
        assert!(
            String::from_utf8(error(405))
                .unwrap()
                .contains("Allow: GET, HEAD")
        );
    }
}
