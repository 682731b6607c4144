//! A tmux server of the test's own (`-L`, no config, killed on drop) with one
//! shell session per name, each a real terminal: the harness of the end-to-end
//! console tests. Every session starts in the server's temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long `wait_for` polls before it fails the test.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Tmux {
    socket: String,
    /// The socket file, removed after the server is killed.
    socket_path: Option<PathBuf>,
    dir: tempfile::TempDir,
}

fn tmux_raw(socket: &str, args: &[&str]) -> Output {
    match Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .arg("-f")
        .arg("/dev/null")
        .args(args)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tmux (scripts/test installs it): {e}"),
    }
}

impl Tmux {
    /// A server named after `tag` with a `bash` session for each `(name, width, height)`.
    pub fn start(tag: &str, sessions: &[(&str, u16, u16)]) -> Tmux {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut t = Tmux {
            socket: format!("ferry-e2e-{}-{tag}", std::process::id()),
            socket_path: None,
            dir,
        };
        for (name, w, h) in sessions {
            t.session(name, *w, *h);
        }
        let path = t.tmux(&["display-message", "-p", "#{socket_path}"]).stdout;
        let path = String::from_utf8_lossy(&path).trim().to_string();
        t.socket_path = (!path.is_empty()).then(|| PathBuf::from(path));
        t
    }

    fn session(&self, name: &str, w: u16, h: u16) {
        let (w, h) = (w.to_string(), h.to_string());
        let cwd = self.path().display().to_string();
        let out = self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &w,
            "-y",
            &h,
            "-c",
            &cwd,
            "-e",
            "PS1=$ ",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn tmux(&self, args: &[&str]) -> Output {
        tmux_raw(&self.socket, args)
    }

    /// Type `text` literally in `who`'s terminal, then press Enter.
    pub fn line(&self, who: &str, text: &str) {
        self.tmux(&["send-keys", "-t", who, "-l", text]);
        self.tmux(&["send-keys", "-t", who, "Enter"]);
    }

    /// Press each of `keys` (tmux key names), a little apart.
    pub fn keys(&self, who: &str, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", who, k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn capture(&self, who: &str) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", who]).stdout).into_owned()
    }

    /// The screen with its colour and attribute escapes.
    pub fn capture_escaped(&self, who: &str) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-e", "-t", who]).stdout)
            .into_owned()
    }

    /// Poll `who`'s screen until `pred` holds; fail with the last screen after [`WAIT`].
    #[track_caller]
    pub fn wait_for(&self, who: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_secs(who, what, WAIT.as_secs(), pred)
    }

    /// [`Tmux::wait_for`] with a limit of `secs`.
    #[track_caller]
    pub fn wait_for_secs(
        &self,
        who: &str,
        what: &str,
        secs: u64,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.capture(who);
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what} on {who}'s screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run `stty -a` in `who`'s shell (after ferry exited) and return its output.
    #[track_caller]
    pub fn stty(&self, who: &str) -> String {
        self.line(who, "stty -a > stty.txt; echo STTY-DONE");
        self.wait_for_secs(who, "stty to run", 10, |s| s.contains("\nSTTY-DONE"));
        std::fs::read_to_string(self.path().join("stty.txt")).unwrap_or_default()
    }

    /// Write a file into the sessions' directory.
    pub fn write(&self, name: &str, text: &str) {
        if let Err(e) = std::fs::write(self.path().join(name), text) {
            panic!("write {name}: {e}");
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux_raw(&self.socket, &["kill-server"]);
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}
