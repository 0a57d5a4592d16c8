//! The driver's (AM container's) stdout and stderr, read from its NodeManager's web services
//! (`GET <nm>/ws/v1/node/containerlogs/<container>/<stdout|stderr>?size=<n>`).
//!
//! ## Guarantees
//! - The cursor is a byte offset into the log file; a read returns at most `max` bytes from it.
//! - The NodeManager address comes from the RM's `amContainerLogs` and must be an http(s) URL
//!   with a host and no userinfo ([`crate::http::web_url`]).
//!
//! ## Caveats
//! - The NM web service reads from the start of the file (`size` = bytes from the start): a read
//!   at offset `o` transfers `o + max` bytes, so following a very long log costs more per read.
//! - Once the NM has deleted the container's logs (no log aggregation, retention passed) they
//!   are gone: `NotFound`. Aggregated logs in HDFS are not read.
use crate::http::{path_segment, web_url, Client, Safety};

/// The NodeManager web address and AM container id of an `amContainerLogs` URL
/// (`http://nm:8042/node/containerlogs/container_1_0001_01_000001/user`).
pub fn am_container(am_container_logs: &str) -> Result<(String, String), String> {
    let url = web_url(am_container_logs)?;
    let mut segs = url.path_segments().into_iter().flatten();
    let container = loop {
        match segs.next() {
            Some("containerlogs") => break segs.next(),
            Some(_) => continue,
            None => break None,
        }
    };
    let container = container
        .filter(|c| c.starts_with("container_"))
        .ok_or_else(|| {
            format!(
                "no container id in {}",
                crate::http::shown(am_container_logs)
            )
        })?;
    let base = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    let base = match url.port() {
        Some(p) => format!("{base}:{p}"),
        None => base,
    };
    Ok((base, container.to_string()))
}

/// The file contents in an NM `containerlogs` answer (the first `LogContents:` section).
pub fn contents(answer: &[u8]) -> Option<&[u8]> {
    let start = find(answer, b"LogContents:\n")? + b"LogContents:\n".len();
    let rest = &answer[start..];
    let end = find(rest, b"End of LogType:").unwrap_or(rest.len());
    Some(&rest[..end])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Why a log read failed.
#[derive(Debug)]
pub enum ReadError {
    /// The NM could not be reached or answered 5xx: ask again.
    Unavailable(String),
    /// The log is not there (gone, or never written).
    NotFound(String),
}

/// Reads at most `max` bytes of `file` of `container` from byte `offset`.
pub async fn read(
    client: &Client,
    nm: &str,
    container: &str,
    file: &str,
    offset: u64,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let seg = path_segment(container).map_err(ReadError::NotFound)?;
    let want = offset.saturating_add(max as u64);
    let url = format!("{nm}/ws/v1/node/containerlogs/{seg}/{file}?size={want}");
    // The answer carries a few hundred bytes of headers around the contents.
    let cap = usize::try_from(want)
        .unwrap_or(usize::MAX)
        .saturating_add(64 << 10);
    let answer = client
        .exchange(Safety::Idempotent, &url, cap, |c| c.get(&url))
        .await
        .map_err(|e| ReadError::Unavailable(e.to_string()))?;
    let answer = match client.success(&url, answer) {
        Ok(a) => a,
        Err(e) if e.status().is_some_and(|s| s >= 500) => {
            return Err(ReadError::Unavailable(e.to_string()))
        }
        Err(e) => return Err(ReadError::NotFound(e.to_string())),
    };
    let data = contents(&answer.body)
        .ok_or_else(|| ReadError::NotFound(format!("{url} holds no log of {file}")))?;
    let from = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let to = data.len().min(from.saturating_add(max));
    Ok(data[from..to].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn am_container_and_contents_are_parsed() {
        let (nm, c) = am_container(
            "http://localhost:42295/node/containerlogs/container_1796148095917_0014_01_000001/root",
        )
        .unwrap();
        assert_eq!(nm, "http://localhost:42295");
        assert_eq!(c, "container_1796148095917_0014_01_000001");
        assert!(am_container("http://nm:8042/node/other").is_err());
        let answer =
            b"Container: c on localhost:1\nLogAggregationType: LOCAL\n====\nLogType:stdout\n\
            LogLength:6\nLogContents:\nhello\nEnd of LogType:stdout.\n*****\n";
        assert_eq!(contents(answer), Some(&b"hello\n"[..]));
        assert_eq!(contents(b"nothing"), None);
    }
}
