//! Bodies read with a hard cap.
//!
//! ## Guarantees
//! - [`read_capped`] refuses an announced length over the cap before reading, then reads chunk
//!   by chunk and stops at the cap: memory never holds more than the cap plus one chunk,
//!   whatever the server sends (or keeps sending). The rest is never read: the connection is
//!   dropped with the response.

/// Why a body could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyError {
    /// Longer than the cap (announced or sent).
    TooLarge,
    /// The transport failed while reading.
    Transport(reqwest::Error),
}

/// The body of `resp`, at most `cap` bytes; more is [`BodyError::TooLarge`].
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
