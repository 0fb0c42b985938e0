//! A PostgreSQL cluster started from the server binaries.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// Extra configuration for a cluster a test starts for itself.
#[derive(Debug, Default, Clone)]
pub struct ClusterOptions {
    /// PEM server certificate and key: turns `ssl` on.
    pub tls: Option<(String, String)>,
    /// Replaces `pg_hba.conf` (the default trusts local connections). Keep a
    /// `host all postgres 127.0.0.1/32 trust` line: [`LocalCluster::psql`]
    /// and the admin URL connect that way, without TLS.
    pub hba: Option<String>,
    /// PostgreSQL's default durability (`synchronous_commit = on`), for
    /// tests that crash the server and count what survived. Test clusters
    /// otherwise commit asynchronously, which loses the last commits on an
    /// immediate shutdown.
    pub durable: bool,
    /// More `postgresql.conf` lines.
    pub settings: Option<String>,
}

/// How [`LocalCluster::stop`] shuts the server down (`pg_ctl -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Ends every session, checkpoints, exits.
    Fast,
    /// Kills every process at once, as a crash would; the next start
    /// recovers from the WAL.
    Immediate,
}

/// How many times a restart test goes through its schedule of outages:
/// `RESTART_ROUNDS`, once when unset (the suite); `bench/faults.sh` asks
/// for more.
pub fn restart_rounds() -> usize {
    std::env::var("RESTART_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .filter(|&rounds| rounds > 0)
        .unwrap_or(1)
}

/// A running cluster. The shared one lives on; one started with
/// [`LocalCluster::start`] stops when dropped.
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    stop_on_drop: bool,
}

impl LocalCluster {
    /// The machine-wide test cluster, started on first use and reused by
    /// later test processes (a file lock keeps concurrent test binaries from
    /// starting it twice).
    pub fn shared() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join("travel-deals-test-postgres");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = fs::File::create(dir.join("start.lock"))?;
        lock.lock()?;
        let bin = server_binaries()?;
        let port_file = dir.join("port");
        let mut cluster = Self {
            dir: dir.clone(),
            port: 0,
            bin,
            stop_on_drop: false,
        };
        if let Ok(port) = fs::read_to_string(&port_file).map(|p| p.trim().parse::<u16>()) {
            cluster.port = port?;
            if cluster.is_running() {
                return Ok(cluster);
            }
        }
        if !dir.join("data/PG_VERSION").exists() {
            cluster.init(&ClusterOptions::default())?;
        }
        cluster.port = free_port()?;
        cluster.launch()?;
        fs::write(&port_file, cluster.port.to_string())?;
        Ok(cluster)
    }

    /// A private cluster in a new temporary directory, stopped and removed
    /// when dropped.
    pub fn start(options: &ClusterOptions) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("travel-deals-pg-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir)?;
        let cluster = Self {
            dir,
            port: free_port()?,
            bin: server_binaries()?,
            stop_on_drop: true,
        };
        cluster.init(options)?;
        cluster.launch()?;
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A superuser URL for `database` over TCP without TLS.
    pub fn admin_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Runs SQL as the superuser through `psql`.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let beside_server = self.bin.join("psql");
        let program = if beside_server.exists() {
            beside_server
        } else {
            PathBuf::from("psql")
        };
        let admin_url = self.admin_url("postgres");
        let output = Command::new(program)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-d",
                &admin_url,
                "-c",
                sql,
            ])
            .output()?;
        if !output.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn init(&self, options: &ClusterOptions) -> anyhow::Result<()> {
        let data = self.dir.join("data");
        if let Some((cert, key)) = &options.tls {
            fs::write(self.dir.join("server.crt"), cert)?;
            fs::write(self.dir.join("server.key"), key)?;
        }
        if running_as_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.dir))?;
            run(Command::new("chmod").arg("0700").arg(&self.dir))?;
        }
        run(self
            .as_server_user(&self.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]))?;
        let mut conf = String::from("\nmax_connections = 300\nlisten_addresses = '127.0.0.1'\n");
        if !options.durable {
            conf.push_str(
                "# test cluster: durability off, this data is thrown away\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            );
        }
        if options.tls.is_some() {
            let cert = self.dir.join("server.crt");
            let key = self.dir.join("server.key");
            if running_as_root() {
                run(Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&cert)
                    .arg(&key))?;
            }
            run(Command::new("chmod").arg("0600").arg(&key))?;
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\npassword_encryption = 'scram-sha-256'\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(settings) = &options.settings {
            conf.push_str(settings);
            conf.push('\n');
        }
        append(&data.join("postgresql.conf"), &conf)?;
        if let Some(hba) = &options.hba {
            let path = data.join("pg_hba.conf");
            fs::write(&path, hba)?;
            if running_as_root() {
                run(Command::new("chown").arg("postgres:postgres").arg(&path))?;
            }
        }
        Ok(())
    }

    /// Shuts the server down; [`LocalCluster::restart`] brings it back on
    /// the same port.
    pub fn stop(&self, mode: Shutdown) -> anyhow::Result<()> {
        let mode = match mode {
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        };
        run(self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "stop"]))
    }

    /// Starts a stopped server again; returns once it accepts connections.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.launch()
    }

    fn launch(&self) -> anyhow::Result<()> {
        let data = self.dir.join("data");
        run(self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {} -k {}", self.port, self.dir.display()))
            .arg("start"))
        .with_context(|| {
            format!(
                "starting PostgreSQL; its log is {}",
                self.dir.join("server.log").display()
            )
        })
    }

    fn is_running(&self) -> bool {
        self.as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("status")
            .output()
            .is_ok_and(|o| o.status.success())
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    fn as_server_user(&self, program: &Path) -> Command {
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = self
                .as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "stop"])
                .output();
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The directory holding `initdb` and `pg_ctl`: `PG_BIN_DIR`, else the
/// newest Debian-style `/usr/lib/postgresql/<major>/bin`, else `PATH`.
fn server_binaries() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Ok(bin);
    }
    let output = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match Path::new(&path).parent() {
        Some(dir) if !path.is_empty() => Ok(dir.to_path_buf()),
        _ => bail!(
            "no PostgreSQL server binaries found: install them (Debian: apt-get install postgresql), \
             set PG_BIN_DIR, or point TEST_POSTGRES_URL at a server"
        ),
    }
}
