//! The throwaway PostgreSQL clusters of `ferry demo --postgres`: a primary
//! (`wal_level = replica`), a streaming standby made from it with
//! `pg_basebackup -R`, and a separate target cluster, all on loopback ports with
//! trust authentication on 127.0.0.1 only.
//!
//! They live in one `mktemp -d` directory under the system temporary folder,
//! made by (and owned by) the OS user that runs the PostgreSQL tools: `postgres`
//! when ferry runs as root (initdb and postgres refuse root; the demo folder under
//! /root is not reachable for them), else ferry's own user. [`Clusters`] owns that
//! directory: dropping it (the normal end, an error, a signal that ended the run,
//! or a panic unwinding) stops every cluster it started (`pg_ctl stop -m fast`,
//! then `-m immediate` if that fails) and removes the directory.

use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The error of a start-up ended by a signal.
pub const INTERRUPTED: &str = "interrupted";

/// What to install when no PostgreSQL binaries are found.
pub const INSTALL_HINT: &str =
    "install PostgreSQL (`apt-get install postgresql`) or set FERRY_PG_BIN to its bin folder";

/// The folder holding `initdb`, `pg_ctl` and `pg_basebackup`: `FERRY_PG_BIN` if
/// set, else the highest `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`.
pub fn find_bin() -> Result<PathBuf, String> {
    find_bin_from(std::env::var_os("FERRY_PG_BIN"))
}

/// [`find_bin`] with the value of `FERRY_PG_BIN` given.
pub fn find_bin_from(env: Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    let has_tools = |d: &Path| {
        ["initdb", "pg_ctl", "pg_basebackup"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    if let Some(v) = env {
        let d = PathBuf::from(v);
        return if has_tools(&d) {
            Ok(d)
        } else {
            Err(format!(
                "FERRY_PG_BIN={} has no initdb, pg_ctl and pg_basebackup: {INSTALL_HINT}",
                d.display()
            ))
        };
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in rd.flatten() {
            let Some(v) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let bin = e.path().join("bin");
            if has_tools(&bin) && best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return Ok(bin);
    }
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&d) {
            return Ok(d);
        }
    }
    Err(format!("no PostgreSQL binaries found: {INSTALL_HINT}"))
}

/// Three distinct free loopback ports (held together while chosen, so they differ).
pub fn free_ports() -> std::io::Result<[u16; 3]> {
    let ls = [
        std::net::TcpListener::bind("127.0.0.1:0")?,
        std::net::TcpListener::bind("127.0.0.1:0")?,
        std::net::TcpListener::bind("127.0.0.1:0")?,
    ];
    Ok([
        ls[0].local_addr()?.port(),
        ls[1].local_addr()?.port(),
        ls[2].local_addr()?.port(),
    ])
}

/// The superuser URL of a demo cluster's database `db` on `port`.
pub fn url(port: u16, db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{db}")
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A command running `prog` as the clusters' owner, from `/` (the postgres user
/// cannot read root's working folder); stdin closed unless the caller pipes it.
fn owner_cmd(prog: &Path) -> tokio::process::Command {
    let mut c = if as_root() {
        let mut c = tokio::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        tokio::process::Command::new(prog)
    };
    // a group of its own: a Ctrl-C at the terminal reaches ferry, which lets
    // the tool finish and then stops what it started
    c.current_dir("/").stdin(Stdio::null()).process_group(0);
    c
}

fn owner_cmd_sync(prog: &Path) -> std::process::Command {
    let mut c = if as_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        std::process::Command::new(prog)
    };
    std::os::unix::process::CommandExt::process_group(&mut c, 0)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

async fn run_ok(what: &str, mut cmd: tokio::process::Command) -> Result<String, String> {
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!("{what} failed: {}", tail.join(" | ")))
    }
}

/// One cluster: its name (`primary`, `standby`, `target`), data folder and port.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: &'static str,
    pub data: PathBuf,
    pub port: u16,
}

/// The demo's clusters and the directory that holds them; see the module doc.
#[derive(Debug)]
pub struct Clusters {
    bin: PathBuf,
    /// The `mktemp -d` directory (mode 0700, owned by the clusters' owner).
    pub root: PathBuf,
    /// Every cluster that was asked to start, in start order, and whether
    /// `pg_ctl start` said it is up.
    started: Vec<(Cluster, bool)>,
}

impl Clusters {
    /// Make the directory the clusters live in (`/tmp/ferry-demo-pg.XXXXXX`),
    /// as the clusters' owner so that it is theirs and private.
    pub async fn make_root(bin: &Path) -> Result<Clusters, String> {
        let tmp = std::env::temp_dir().join("ferry-demo-pg.XXXXXX");
        let mut cmd = owner_cmd(Path::new("mktemp"));
        cmd.arg("-d").arg(&tmp);
        let out = run_ok("mktemp -d", cmd).await?;
        let root = PathBuf::from(out.trim());
        if !root.is_absolute() || !root.is_dir() {
            return Err(format!("mktemp -d gave no folder: {out:?}"));
        }
        Ok(Clusters {
            bin: bin.to_path_buf(),
            root,
            started: Vec::new(),
        })
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// Append `text` to `file` as the clusters' owner (the file is theirs).
    async fn append_as_owner(&self, file: &Path, text: &str) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = owner_cmd(Path::new("sh"));
        cmd.args(["-c", "cat >> \"$1\"", "sh"])
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        if !out.status.success() {
            return Err(format!(
                "cannot write {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    async fn configure(&self, data: &Path, port: u16) -> Result<(), String> {
        let conf = format!(
            "\n# ---- ferry demo --postgres ----\n\
             listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n\
             wal_keep_size = '256MB'\nfsync = off\nfull_page_writes = off\n\
             shared_buffers = 64MB\nmax_connections = 40\nlogging_collector = off\n"
        );
        self.append_as_owner(&data.join("postgresql.conf"), &conf)
            .await
    }

    async fn initdb(&self, name: &'static str, port: u16) -> Result<Cluster, String> {
        let data = self.root.join(name);
        let mut cmd = owner_cmd(&self.tool("initdb"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"]);
        run_ok(&format!("initdb of the {name} cluster"), cmd).await?;
        // trust on 127.0.0.1 only: initdb's own lines (local and ::1) go
        let hba = "# ferry demo --postgres: trust on 127.0.0.1 only\n\
                   host all all 127.0.0.1/32 trust\n\
                   host replication all 127.0.0.1/32 trust\n";
        let mut cmd = owner_cmd(Path::new("sh"));
        cmd.args(["-c", "printf '%s' \"$2\" > \"$1\"", "sh"])
            .arg(data.join("pg_hba.conf"))
            .arg(hba);
        run_ok(&format!("writing the {name} cluster's pg_hba.conf"), cmd).await?;
        self.configure(&data, port).await?;
        Ok(Cluster { name, data, port })
    }

    async fn start(&mut self, c: Cluster) -> Result<(), String> {
        // recorded first: a start cut short (a panic) is still stopped by drop
        self.started.push((c.clone(), false));
        let mut cmd = owner_cmd(&self.tool("pg_ctl"));
        cmd.arg("-D")
            .arg(&c.data)
            .arg("-l")
            .arg(self.root.join(format!("{}.log", c.name)))
            .args(["-w", "-t", "60", "start"]);
        let r = run_ok(&format!("starting the {} cluster", c.name), cmd).await;
        if let Some(last) = self.started.last_mut() {
            last.1 = r.is_ok();
        }
        r.map(|_| ()).map_err(|e| {
            format!(
                "{e} (log: {})",
                self.root.join(format!("{}.log", c.name)).display()
            )
        })
    }

    /// initdb and start the primary, base-backup and start the standby, wait
    /// until it streams, then initdb and start the target. `stop` is looked at
    /// between the tools (each runs to its end): a signal ends the start-up
    /// there, and drop stops what did start.
    pub async fn start_all(
        &mut self,
        ports: [u16; 3],
        stop: &CancellationToken,
        progress: impl Fn(&str),
    ) -> Result<(), String> {
        let go_on = || {
            if stop.is_cancelled() {
                Err(INTERRUPTED.to_string())
            } else {
                Ok(())
            }
        };
        go_on()?;
        let primary = self.initdb("primary", ports[0]).await?;
        go_on()?;
        self.start(primary).await?;
        progress("the primary is up; making the standby with pg_basebackup -R …");
        go_on()?;
        let standby = self.root.join("standby");
        let mut cmd = owner_cmd(&self.tool("pg_basebackup"));
        cmd.arg("-d")
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres application_name=ferry_demo_standby",
                ports[0]
            ))
            .arg("-D")
            .arg(&standby)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]);
        run_ok("pg_basebackup of the standby", cmd).await?;
        // the copied postgresql.conf names the primary's port: the last setting wins
        self.configure(&standby, ports[1]).await?;
        go_on()?;
        self.start(Cluster {
            name: "standby",
            data: standby,
            port: ports[1],
        })
        .await?;
        go_on()?;
        self.wait_streaming(ports[0], Duration::from_secs(60), stop)
            .await?;
        progress("the standby streams from the primary; making the target …");
        let target = self.initdb("target", ports[2]).await?;
        go_on()?;
        self.start(target).await?;
        go_on()
    }

    /// Wait until the primary on `port` has a standby in state `streaming`.
    pub async fn wait_streaming(
        &self,
        port: u16,
        limit: Duration,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if stop.is_cancelled() {
                return Err(INTERRUPTED.to_string());
            }
            match PgConnection::connect(&url(port, "postgres")).await {
                Ok(mut c) => {
                    let n: Result<i64, _> = sqlx::query_scalar(
                        "select count(*) from pg_stat_replication where state = 'streaming'",
                    )
                    .fetch_one(&mut c)
                    .await;
                    let _ = c.close().await;
                    match n {
                        Ok(n) if n >= 1 => return Ok(()),
                        Ok(_) => last = "no standby streaming yet".into(),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!(
            "the standby did not start streaming within {}s ({last}; log: {})",
            limit.as_secs(),
            self.root.join("standby.log").display()
        ))
    }

    /// Stop every started cluster (the standby first) and remove the directory.
    /// Blocking; safe to call twice.
    pub fn stop_all(&mut self) {
        while let Some((c, up)) = self.started.pop() {
            // a start cut short may still bring the server up: its pid file
            // appears within moments of the launch
            let pid = c.data.join("postmaster.pid");
            let until = Instant::now() + Duration::from_secs(if up { 0 } else { 3 });
            while !pid.exists() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
            if !pid.exists() {
                continue;
            }
            let stop = |mode: &str| {
                owner_cmd_sync(&self.tool("pg_ctl"))
                    .arg("-D")
                    .arg(&c.data)
                    .args(["-m", mode, "-w", "-t", "30", "stop"])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !stop("fast") {
                stop("immediate");
            }
        }
        if self.root.as_os_str().is_empty() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.root);
        if self.root.exists() && as_root() {
            // as a last resort, as the owner of the files
            let _ = owner_cmd_sync(Path::new("rm"))
                .arg("-rf")
                .arg(&self.root)
                .status();
        }
        self.root = PathBuf::new();
    }
}

impl Drop for Clusters {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_urls_name_them() {
        let [a, b, c] = free_ports().unwrap();
        assert!(a != b && b != c && a != c);
        assert_eq!(
            url(5432, "dating"),
            "postgres://postgres@127.0.0.1:5432/dating"
        );
    }

    #[test]
    fn a_bin_folder_without_the_tools_is_refused_with_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_bin_from(Some(dir.path().into())).unwrap_err();
        assert!(e.contains("apt-get install postgresql"), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}
