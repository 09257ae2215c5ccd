//! The events posted to a server (`POST /v1/events`): one JSON object per line in
//! `events/ingested.jsonl` under the store, appended and synced to disk before the server
//! answers, and read by every run next to the project's events file.
//!
//! Durability: a batch is written with one `write_all` and `sync_data` (and, when the file is
//! new, the folder is synced so that its entry survives a crash too). A crash in the middle of a
//! write can leave a last line without its line end: it was never acknowledged, readers leave
//! it out, and the next append cuts it off before writing.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result, io};

/// The log's path inside the store folder.
pub const EVENT_LOG: &str = "events/ingested.jsonl";

/// The event log of a store.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: Option<File>,
}

impl EventLog {
    /// The log of the store at `root` (created on the first append).
    pub fn new(root: &Path) -> EventLog {
        EventLog { path: root.join(EVENT_LOG), file: None }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether anything was ever appended.
    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// The complete lines (a torn last line left out) that begin with `prefix`, in order;
    /// none when the log does not exist.
    pub fn lines_starting_with(&self, prefix: &str) -> Result<Vec<String>> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("open", &self.path)(e)),
        };
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut found = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
                .map_err(io("read", &self.path))?;
            if read == 0 || line.last() != Some(&b'\n') {
                return Ok(found);
            }
            if line.starts_with(prefix.as_bytes()) {
                line.pop();
                found.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }

    /// Appends `lines` (each one JSON object without a line end) and syncs them to disk; when
    /// this returns `Ok`, they survive a crash of the process or the machine.
    pub fn append(&mut self, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            if line.contains('\n') {
                return Err(Error::Layout {
                    path: self.path.clone(),
                    message: format!("an event log line holds a line end ({} bytes)", line.len()),
                });
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open(&self.path)?),
        };
        file.write_all(&bytes).map_err(io("append to", &self.path))?;
        file.sync_data().map_err(io("sync", &self.path))
    }
}

/// The log at `path`, opened for appending under an exclusive lock, with a torn last line cut
/// off.
fn open(path: &Path) -> Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let new = !path.exists();
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    // Appends go to the end whatever else wrote; the exclusive lock (held while this
    // log is open) keeps a second server on the same store from writing beside this one.
    let mut file =
        OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io("open", path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(Error::Layout {
                path: path.to_path_buf(),
                message: "another segmenta process is appending to this event log: serve a store from one server at a time".into(),
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io("lock", path)(e)),
    }
    let complete = complete_length(&mut file).map_err(io("read", path))?;
    file.set_len(complete).map_err(io("repair", path))?;
    if new {
        file.sync_all().map_err(io("sync", path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))?;
    }
    Ok(file)
}

/// The length of the file up to and including its last line end.
fn complete_length(file: &mut File) -> std::io::Result<u64> {
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut buffer = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let len = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buffer[..len])?;
        if let Some(i) = buffer[..len].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_whole_lines_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().expect("a folder");
        let mut log = EventLog::new(dir.path());
        assert!(!log.exists());
        log.append(&["{\"a\":1}".into(), "{\"a\":2}".into()]).expect("appends");
        drop(log);
        // A crash mid-write leaves part of a line.
        let path = dir.path().join(EVENT_LOG);
        OpenOptions::new().append(true).open(&path).expect("opens").write_all(b"{\"a\":").expect("writes");
        let mut log = EventLog::new(dir.path());
        log.append(&["{\"a\":3}".into()]).expect("appends");
        assert_eq!(fs::read_to_string(&path).expect("reads"), "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
        assert!(log.append(&["{\n}".into()]).is_err());
        // A torn line is not found either.
        OpenOptions::new().append(true).open(&path).expect("opens").write_all(b"{\"a\":4").expect("writes");
        assert_eq!(
            log.lines_starting_with("{\"a\":").expect("reads"),
            ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]
        );
        assert!(log.lines_starting_with("{\"b\"").expect("reads").is_empty());
        // A second writer of the same log is refused while the first holds it.
        let mut second = EventLog::new(dir.path());
        let refused = second.append(&["{\"a\":5}".into()]).expect_err("the log is held");
        assert!(refused.to_string().contains("one server at a time"), "{refused}");
        drop(log);
        second.append(&["{\"a\":5}".into()]).expect("free once the first is closed");
        assert!(fs::read_to_string(&path).expect("reads").ends_with("{\"a\":3}\n{\"a\":5}\n"));
    }
}
