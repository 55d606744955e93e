//! Reading the request body within the size limit, inflating gzip.
//!
//! Nothing unbounded is buffered: a declared length over the limit is refused
//! before reading, a streamed body stops at the limit, and gzip output stops
//! one byte past it (a bomb is refused after `limit` bytes of work).

use std::io::Read;

use axum::{
    body::Body,
    http::{header, HeaderMap, StatusCode},
};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let gzip = match encoding(headers)? {
        Encoding::Identity => false,
        Encoding::Gzip => true,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large(limit)),
        Err(_) => {
            return Err(ApiError::bad_request(
                "the request body could not be read completely",
            ))
        }
    };
    if gzip {
        inflate(&bytes, limit)
    } else {
        Ok(bytes)
    }
}

enum Encoding {
    Identity,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut result = Encoding::Identity;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value.to_str().unwrap_or("?").trim().to_ascii_lowercase();
        match value.as_str() {
            "" | "identity" => {}
            "gzip" | "x-gzip" if matches!(result, Encoding::Identity) => result = Encoding::Gzip,
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding",
                    "Content-Encoding must be gzip or identity",
                ))
            }
        }
    }
    Ok(result)
}

fn inflate(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| ApiError::bad_request("the body is not valid gzip"))?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(out))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is over the {limit}-byte limit (after gzip inflation)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_inflates_within_the_limit() {
        let out = inflate(&gzip(b"{\"type\":1}"), 100).unwrap();
        assert_eq!(&out[..], b"{\"type\":1}");
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![b' '; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let e = inflate(&bomb, 4 << 20).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn garbage_that_claims_gzip_is_a_bad_request() {
        let e = inflate(b"not gzip at all", 100).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
