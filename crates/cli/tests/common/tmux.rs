//! A real pseudo-terminal for tests: a tmux server of its own, one pane 80 columns wide.
use std::process::{Command, Stdio};

use super::Env;

/// A tmux server of its own (killed on drop), its one pane 80 columns wide.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(env: &Env, shell_command: &str) -> Tmux {
        let socket = format!("tether-test-{}-{}", std::process::id(), env.jobs.display())
            .replace(['/', '.'], "-");
        let mut c = Command::new("tmux");
        c.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "80", "-y", "24"]);
        for (k, v) in env.cmd().get_envs() {
            if let Some(v) = v {
                c.arg("-e")
                    .arg(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
            }
        }
        c.arg("-c").arg(env.dir.path()).arg(shell_command);
        let st = c
            .status()
            .expect("tmux is needed for the pseudo-terminal tests (Debian: apt-get install tmux)");
        assert!(st.success(), "tmux new-session failed");
        Tmux { socket }
    }

    /// The screen's rows, trailing spaces removed.
    pub fn screen(&self) -> Vec<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    /// The screen as the terminal got it, colour escape codes included (`capture-pane -e`).
    pub fn screen_with_escapes(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-e"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}
