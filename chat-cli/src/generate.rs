//! `--generate KIND`: the man page or a shell completion script, written from the program's own
//! clap command so they always match its flags. `cargo xtask install` installs them.

use std::io::Write;

use clap::{Args, ValueEnum};
use clap_complete::Shell;

/// The flag every binary flattens into its top-level command.
#[derive(Debug, Clone, Default, Args)]
pub struct GenerateArgs {
    /// Print the man page or a shell completion script, then exit
    #[arg(long, value_name = "KIND", value_enum)]
    pub generate: Option<Generate>,
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page (roff).
    Man,
    /// Completions for bash.
    CompleteBash,
    /// Completions for zsh.
    CompleteZsh,
    /// Completions for fish.
    CompleteFish,
    /// Completions for PowerShell.
    CompletePowershell,
    /// Completions for elvish.
    CompleteElvish,
}

impl Generate {
    /// Every kind, for installers.
    pub const ALL: [Generate; 6] = [
        Generate::Man,
        Generate::CompleteBash,
        Generate::CompleteZsh,
        Generate::CompleteFish,
        Generate::CompletePowershell,
        Generate::CompleteElvish,
    ];

    /// The shell, for completion scripts.
    fn shell(self) -> Option<Shell> {
        match self {
            Generate::Man => None,
            Generate::CompleteBash => Some(Shell::Bash),
            Generate::CompleteZsh => Some(Shell::Zsh),
            Generate::CompleteFish => Some(Shell::Fish),
            Generate::CompletePowershell => Some(Shell::PowerShell),
            Generate::CompleteElvish => Some(Shell::Elvish),
        }
    }

    /// Writes the man page or completion script of `cmd` to `out`.
    pub fn write(self, mut cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
        match self.shell() {
            Some(shell) => {
                let name = cmd.get_name().to_owned();
                clap_complete::generate(shell, &mut cmd, name, out);
                Ok(())
            }
            None => clap_mangen::Man::new(cmd).render(out),
        }
    }

    /// Writes to standard output (what `--generate` does).
    pub fn print(self, cmd: clap::Command) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let mut out = std::io::stdout().lock();
        self.write(cmd, &mut out)
            .and_then(|()| out.flush())
            .context("cannot write to standard output")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_and_completions_name_the_flags() {
        let cmd = clap::Command::new("demo").about("a demo").arg(
            clap::Arg::new("listen")
                .long("listen")
                .help("where to listen"),
        );
        for kind in Generate::ALL {
            let mut out = Vec::new();
            kind.write(cmd.clone(), &mut out).expect("write");
            let text = String::from_utf8(out).expect("utf-8");
            assert!(text.contains("listen"), "{kind:?}: {text}");
        }
        let mut man = Vec::new();
        Generate::Man.write(cmd, &mut man).expect("man");
        assert!(String::from_utf8_lossy(&man).starts_with(".ie"), "roff");
    }
}
