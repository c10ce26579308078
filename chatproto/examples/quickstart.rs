//! Quickstart: connect to a running chatd, log in (registering on first use), open a chat (the
//! same group on every run), send a message and print incoming events until Ctrl-C. Like every
//! SDK client it starts each chat it has no cursor for in the recent past (the last
//! `DEFAULT_RECENT_EVENTS` events, `ClientConfig::unknown_chats`), not from its first event.
//!
//! ```text
//! cargo run --release -p chatproto --example quickstart -- 127.0.0.1:4433 --pin <sha256-hex> \
//!     --user alice --password 'correct horse' [--peer bob | --group "Team"] [--text "hi"]
//! ```
//!
//! Verification: `--pin HEX` (the server certificate's SHA-256, as chatd prints it),
//! `--ca FILE` (PEM roots; add `--server-name NAME` if the address is not the certificate's name)
//! or `--insecure` (development only).

use anyhow::{Context, Result, bail};
use chatproto::client::{Client, ClientConfig, ClientError, ClientEvent};
use chatproto::fingerprint::parse_fingerprint;
use chatproto::pb;
use chatproto::tls::Verification;

struct Args {
    address: String,
    verification: Verification,
    server_name: Option<String>,
    user: String,
    password: String,
    peer: Option<String>,
    group: Option<String>,
    text: String,
}

const USAGE: &str = "usage: quickstart HOST:PORT (--pin HEX | --ca FILE | --insecure) \
[--server-name NAME] --user NAME --password PASSWORD [--peer USERNAME | --group TITLE] [--text MESSAGE]";

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut address = None;
    let mut verification = None;
    let mut server_name = None;
    let mut user = None;
    let mut password = None;
    let mut peer = None;
    let mut group = None;
    let mut text = "hello from the chatproto quickstart".to_string();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--pin" => verification = Some(Verification::Pin(parse_fingerprint(&value("--pin")?)?)),
            "--ca" => verification = Some(Verification::CaFile(value("--ca")?.into())),
            "--insecure" => verification = Some(Verification::InsecureDangerous),
            "--server-name" => server_name = Some(value("--server-name")?),
            "--user" => user = Some(value("--user")?),
            "--password" => password = Some(value("--password")?),
            "--peer" => peer = Some(value("--peer")?),
            "--group" => group = Some(value("--group")?),
            "--text" => text = value("--text")?,
            "-h" | "--help" => bail!("{USAGE}"),
            other if other.starts_with("--") => bail!("unknown option {other}\n{USAGE}"),
            other if address.is_none() => address = Some(other.to_string()),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    Ok(Args {
        address: address.context(USAGE)?,
        verification: verification
            .context("choose how to verify the server: --pin, --ca or --insecure")?,
        server_name,
        user: user.context("--user is required")?,
        password: password.context("--password is required")?,
        peer,
        group,
        text,
    })
}

/// Logs in, or registers the account when the login is refused.
async fn sign_in(client: &Client, args: &Args) -> Result<pb::AuthResult> {
    match client.login(&args.user, &args.password, "quickstart").await {
        Ok(auth) => Ok(auth),
        Err(ClientError::Remote(e)) if e.code == pb::ErrorCode::Unauthenticated => {
            println!("login refused ({}), registering {}", e.message, args.user);
            client
                .register(pb::Register {
                    username: args.user.clone(),
                    // A real client asks for the address; the example makes one up.
                    email: format!("{}@example.invalid", args.user),
                    password: args.password.clone(),
                    device_name: "quickstart".into(),
                })
                .await
                .context("register")
        }
        Err(e) => Err(e).context("login"),
    }
}

/// Opens the private chat with `--peer`, or the group `--group` (default "Quickstart"): the one
/// this user created before if there is one, so running the example again reuses it.
async fn open_chat(client: &Client, args: &Args, me: u64) -> Result<pb::Chat> {
    if let Some(peer) = &args.peer {
        let found = client
            .search_users(pb::SearchUsers {
                query: peer.clone(),
                limit: 20,
                cursor: String::new(),
            })
            .await
            .context("search users")?;
        let user = found
            .users
            .iter()
            .find(|u| u.username == peer.to_lowercase())
            .with_context(|| format!("no user named {peer}"))?;
        return client
            .create_private_chat(user.id)
            .await
            .context("open private chat");
    }
    let title = args.group.clone().unwrap_or_else(|| "Quickstart".into());
    let mut cursor = String::new();
    loop {
        let page = client
            .list_chats(pb::ListChats {
                limit: 0,
                cursor: cursor.clone(),
                include_archived: true,
            })
            .await
            .context("list chats")?;
        if let Some(chat) = page
            .chats
            .into_iter()
            .find(|c| c.kind() == pb::ChatKind::Group && c.title == title && c.owner_id == me)
        {
            return Ok(chat);
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    client
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title,
            description: String::new(),
            member_ids: Vec::new(),
        })
        .await
        .context("create group")
}

fn describe(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Chat(ev) => match &ev.body {
            Some(pb::chat_event::Body::MessageCreated(m)) => format!(
                "chat {} #{}: user {} says {:?}",
                ev.chat_id, ev.seq, m.sender_id, m.text
            ),
            Some(body) => format!("chat {} #{}: {body:?}", ev.chat_id, ev.seq),
            None => format!("chat {} #{}", ev.chat_id, ev.seq),
        },
        ClientEvent::Typing(t) => format!("chat {}: user {} is typing", t.chat_id, t.user_id),
        ClientEvent::TokensRefreshed(_) => "tokens refreshed (a real app persists them)".into(),
        other => format!("{other:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // Warnings at least: the insecure mode's warning must be seen.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = parse_args()?;
    let mut config = ClientConfig::new(args.address.clone(), args.verification.clone());
    config.server_name = args.server_name.clone();
    config.client_name = concat!("quickstart/", env!("CARGO_PKG_VERSION")).into();
    let client = Client::connect(config)
        .await
        .with_context(|| format!("connect to {}", args.address))?;
    if let Some(welcome) = client.welcome() {
        println!(
            "connected to {} ({}), capabilities {:?}",
            welcome.node_id, welcome.server_name, welcome.capabilities
        );
    }
    let auth = sign_in(&client, &args).await?;
    let me = auth.user.unwrap_or_default();
    println!("signed in as {} (user {})", me.username, me.id);

    let chat = open_chat(&client, &args, me.id).await?;
    println!("chat {} ({:?}) is open", chat.id, chat.title);
    let sent = client
        .send_text(chat.id, &args.text)
        .await
        .context("send message")?;
    println!("sent message #{} in chat {}", sent.seq, sent.chat_id);

    // The handler is in place before the prompt invites Ctrl-C: a signal that arrives between
    // the two would otherwise kill the process instead of closing the client.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("install the Ctrl-C handler")?;
    println!("waiting for events; Ctrl-C to quit");
    loop {
        tokio::select! {
            event = client.next_event() => match event {
                Some(event) => println!("{}", describe(&event)),
                None => break,
            },
            _ = interrupt.recv() => break,
        }
    }
    client.close().await;
    Ok(())
}
