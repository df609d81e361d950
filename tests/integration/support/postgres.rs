//! Real PostgreSQL for tests: a primary and streaming standbys (`initdb`,
//! `pg_basebackup -R`) in temporary directories on loopback ports. PostgreSQL refuses
//! to run as root, so as root every command runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(program: &str) -> Command {
    let path = format!("{BIN}/{program}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    // The effective uid of this process, without libc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: cannot run ({e}); is PostgreSQL 15 installed?"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One PostgreSQL server.
pub struct Pg {
    pub port: u16,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
    running: bool,
}

impl Pg {
    fn make_dir() -> tempfile::TempDir {
        let dir = tempfile::Builder::new().prefix("switchyard-pg-").tempdir().unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        dir
    }

    /// A new primary, started.
    pub fn primary() -> Pg {
        let (dir, data) = Self::init();
        append(&data.join("pg_hba.conf"), "host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n");
        Pg::start_on_a_free_port(data, dir)
    }

    /// A new primary that takes TLS connections only (`hostssl` in pg_hba.conf), with
    /// this certificate and key (PEM), started.
    pub fn primary_with_tls(cert_pem: &str, key_pem: &str) -> Pg {
        use std::os::unix::fs::PermissionsExt;
        let (dir, data) = Self::init();
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        // PostgreSQL refuses a key that others can read, or that it does not own.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let mut c = Command::new("chown");
            c.arg("postgres:postgres").arg(&cert).arg(&key);
            run(c, "chown");
        }
        append(&data.join("postgresql.conf"), "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        // initdb's own lines take plain TCP too: replaced, not appended to.
        std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.1/32 trust\n").unwrap();
        Pg::start_on_a_free_port(data, dir)
    }

    /// A new data directory, initialised and configured for tests, not started.
    fn init() -> (tempfile::TempDir, PathBuf) {
        let dir = Self::make_dir();
        let data = dir.path().join("data");
        let mut c = as_postgres("initdb");
        c.args(["--no-sync", "-U", "postgres", "--auth=trust", "-D"]).arg(&data);
        run(c, "initdb");
        let conf = "listen_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 10\n\
                    hot_standby = on\nfsync = off\nsynchronous_commit = off\n\
                    unix_socket_directories = ''\n";
        append(&data.join("postgresql.conf"), conf);
        (dir, data)
    }

    /// A streaming standby of `primary` (a primary or itself a standby: cascading),
    /// started.
    pub fn standby_of(primary: &Pg) -> Pg {
        Pg::standby_named(primary, None)
    }

    /// A standby whose upstream knows it by `name` (its `cluster_name`, which the WAL
    /// receiver sends as its application name).
    pub fn standby_named(primary: &Pg, name: Option<&str>) -> Pg {
        let dir = Self::make_dir();
        let data = dir.path().join("data");
        let mut c = as_postgres("pg_basebackup");
        c.args([
            "--no-sync",
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-D",
        ])
        .arg(&data);
        run(c, "pg_basebackup");
        if let Some(name) = name {
            append(&data.join("postgresql.conf"), &format!("cluster_name = '{name}'\n"));
        }
        Pg::start_on_a_free_port(data, dir)
    }

    /// A port picked as free may be taken by another test before PostgreSQL binds it:
    /// then `pg_ctl start` fails, and we try another port.
    fn start_on_a_free_port(data: PathBuf, dir: tempfile::TempDir) -> Pg {
        let mut pg = Pg { port: free_port(), data, _dir: dir, running: false };
        for _ in 0..4 {
            if pg.pg_ctl_start().status.success() {
                pg.running = true;
                return pg;
            }
            pg.port = free_port();
        }
        pg.start();
        pg
    }

    fn pg_ctl_start(&self) -> std::process::Output {
        let log = self.data.parent().unwrap().join("log");
        let mut c = as_postgres("pg_ctl");
        c.args(["-w", "-t", "60", "-D"]).arg(&self.data).arg("-l").arg(&log).args([
            "-o",
            &format!("-p {}", self.port),
            "start",
        ]);
        c.output().unwrap_or_else(|e| panic!("pg_ctl start: cannot run ({e}); is PostgreSQL 15 installed?"))
    }

    /// Starts (again) on its port.
    pub fn start(&mut self) {
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.data.parent().unwrap().join("log")).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops at once, as a crash would (no shutdown checkpoint).
    pub fn kill(&mut self) {
        let mut c = as_postgres("pg_ctl");
        c.args(["-w", "-D"]).arg(&self.data).args(["-m", "immediate", "stop"]);
        run(c, "pg_ctl stop");
        self.running = false;
    }

    /// Promotes a standby and waits until it accepts writes.
    pub fn promote(&self) {
        let mut c = as_postgres("pg_ctl");
        c.args(["-w", "-t", "60", "-D"]).arg(&self.data).arg("promote");
        run(c, "pg_ctl promote");
    }

    /// Runs SQL with psql over TCP (trust authentication) and returns its output.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(format!("{BIN}/psql"))
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("psql: cannot run ({e})"));
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops a standby's WAL receiver (no upstream to stream from), as a partition
    /// would; returns what `reconnect` needs to undo it.
    pub fn cut_off(&self) -> String {
        let conninfo = self.sql("SHOW primary_conninfo");
        self.sql("ALTER SYSTEM SET primary_conninfo = ''");
        self.sql("SELECT pg_reload_conf()");
        conninfo
    }

    pub fn reconnect(&self, conninfo: &str) {
        self.sql(&format!("ALTER SYSTEM SET primary_conninfo = '{}'", conninfo.replace('\'', "''")));
        self.sql("SELECT pg_reload_conf()");
    }

    /// Lets clients from `ip` in (pg_hba.conf), and reloads.
    pub fn allow(&self, ip: &str) {
        append(&self.data.join("pg_hba.conf"), &format!("host all all {ip}/32 trust\n"));
        self.sql("SELECT pg_reload_conf()");
    }

    /// PostgreSQL's system identifier of this server's cluster.
    pub fn system_identifier(&self) -> String {
        self.sql("SELECT system_identifier FROM pg_control_system()")
    }

    pub fn dsn(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=2", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.running {
            let mut c = as_postgres("pg_ctl");
            c.args(["-D"]).arg(&self.data).args(["-m", "immediate", "stop"]);
            let _ = c.output();
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}
