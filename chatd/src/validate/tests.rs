use super::*;

const F: &str = "req.field";

fn kind<T: std::fmt::Debug>(r: FieldResult<T>) -> FieldErrorKind {
    match r {
        Err(e) => {
            assert_eq!(e.field, F);
            e.kind
        }
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

use FieldErrorKind::{Invalid, TooLarge};

#[test]
fn username_folds_ascii_case_and_rejects_the_rest() {
    let ok: &[(&str, &str)] = &[
        ("bob", "bob"),
        ("Bob_Smith.2", "bob_smith.2"),
        ("ABC", "abc"),
        ("a.b", "a.b"),
        (&"x".repeat(32), &"x".repeat(32)),
    ];
    for (raw, want) in ok {
        assert_eq!(username(F, raw).as_deref(), Ok(*want), "{raw:?}");
    }
    let bad: &[(&str, FieldErrorKind)] = &[
        ("", Invalid),
        ("ab", Invalid),
        (&"x".repeat(33), TooLarge),
        ("bob smith", Invalid),
        ("bob-smith", Invalid),
        ("bób", Invalid),      // non-ASCII letter
        ("ＢＯＢ", Invalid),   // fullwidth letters are not folded
        ("bob\u{0}", Invalid), // NUL
        ("İstanbul", Invalid), // Unicode uppercase with special lowercase
        ("bob\u{200B}", Invalid),
    ];
    for (raw, want) in bad {
        assert_eq!(kind(username(F, raw)), *want, "{raw:?}");
    }
}

#[test]
fn email_needs_one_at_and_no_whitespace() {
    for ok in [
        "a@b",
        "alice@example.com",
        "x.y+tag@sub.example.org",
        "ü@ü.de",
    ] {
        assert_eq!(email(F, ok), Ok(()), "{ok:?}");
    }
    let long_local = format!("{}@example.com", "a".repeat(242)); // 254 bytes
    assert_eq!(long_local.len(), 254);
    assert_eq!(email(F, &long_local), Ok(()));
    let too_long = format!("{}@example.com", "a".repeat(243));
    let bad: &[(&str, FieldErrorKind, &str)] = &[
        ("", Invalid, "must be at least 3 bytes"),
        ("a@", Invalid, "must be at least 3 bytes"),
        ("abc", Invalid, "must contain an '@'"),
        (
            "@ab",
            Invalid,
            "must have a non-empty part before and after '@'",
        ),
        (
            "ab@",
            Invalid,
            "must have a non-empty part before and after '@'",
        ),
        ("a@b@c", Invalid, "must contain exactly one '@'"),
        (
            "a b@c",
            Invalid,
            "must not contain whitespace or control characters",
        ),
        (
            " a@b",
            Invalid,
            "must not contain whitespace or control characters",
        ),
        (
            "a@b\n",
            Invalid,
            "must not contain whitespace or control characters",
        ),
        (
            "a@b\u{202E}",
            Invalid,
            "must not contain whitespace or control characters",
        ),
        (
            "a@b\u{E0041}",
            Invalid,
            "must not contain whitespace or control characters",
        ),
        (&too_long, TooLarge, "must be at most 254 bytes"),
    ];
    for (raw, k, msg) in bad {
        let err = email(F, raw).expect_err(raw);
        assert_eq!((err.kind, err.message.as_str()), (*k, *msg), "{raw:?}");
    }
}

#[test]
fn password_is_bounded_in_bytes() {
    assert_eq!(password(F, "12345678"), Ok(()));
    assert_eq!(password(F, &"p".repeat(1024)), Ok(()));
    // 7 bytes, 7 chars; and 8 bytes in 4 chars counts as 8.
    assert_eq!(kind(password(F, "1234567")), Invalid);
    assert_eq!(password(F, "éééé"), Ok(()));
    assert_eq!(kind(password(F, &"p".repeat(1025))), TooLarge);
    assert_eq!(kind(password(F, "")), Invalid);
}

#[test]
fn device_name_defaults_and_trims() {
    assert_eq!(device_name(F, "").as_deref(), Ok(DEFAULT_DEVICE_NAME));
    assert_eq!(device_name(F, "   ").as_deref(), Ok(DEFAULT_DEVICE_NAME));
    assert_eq!(device_name(F, " laptop ").as_deref(), Ok("laptop"));
    assert_eq!(
        device_name(F, &"ü".repeat(64)).as_deref(),
        Ok("ü".repeat(64).as_str())
    );
    assert_eq!(kind(device_name(F, &"ü".repeat(65))), TooLarge);
    assert_eq!(kind(device_name(F, "my\nphone")), Invalid);
    assert_eq!(kind(device_name(F, "phone\u{7}")), Invalid);
}

#[test]
fn display_name_allows_empty_and_unicode_but_no_controls() {
    assert_eq!(display_name(F, "").as_deref(), Ok(""));
    assert_eq!(display_name(F, "  Zoë  ").as_deref(), Ok("Zoë"));
    assert_eq!(display_name(F, "محمد").as_deref(), Ok("محمد"));
    // 64 characters of e + combining acute = 32 visible letters, 64 scalar values.
    let combining = "e\u{0301}".repeat(32);
    assert_eq!(
        display_name(F, &combining).as_deref(),
        Ok(combining.as_str())
    );
    assert_eq!(kind(display_name(F, &format!("{combining}x"))), TooLarge);
    assert_eq!(kind(display_name(F, "evil\u{202E}gnp.exe")), Invalid);
    assert_eq!(kind(display_name(F, "two\nlines")), Invalid);
    assert_eq!(kind(display_name(F, "tab\there")), Invalid);
}

#[test]
fn bio_and_description_allow_newlines_and_tabs() {
    assert_eq!(bio(F, "line one\nline two\tend"), Ok(()));
    assert_eq!(bio(F, &"b".repeat(500)), Ok(()));
    assert_eq!(kind(bio(F, &"b".repeat(501))), TooLarge);
    assert_eq!(kind(bio(F, "crlf\r\n")), Invalid);
    assert_eq!(kind(bio(F, "bell\u{7}")), Invalid);
    assert_eq!(description(F, ""), Ok(()));
    assert_eq!(description(F, &"d\n".repeat(500)), Ok(()));
    assert_eq!(kind(description(F, &"d".repeat(1001))), TooLarge);
    assert_eq!(kind(description(F, "x\u{2066}y")), Invalid);
}

#[test]
fn file_id_is_url_safe_and_required() {
    for ok in ["abc", "A-b_9", &"f".repeat(128)] {
        assert_eq!(file_id(F, ok), Ok(()), "{ok:?}");
    }
    assert_eq!(kind(file_id(F, &"f".repeat(129))), TooLarge);
    for bad in ["", "a b", "a/b", "a.b", "ü", "a\0"] {
        assert_eq!(kind(file_id(F, bad)), Invalid, "{bad:?}");
    }
}

#[test]
fn chat_title_is_trimmed_and_required() {
    assert_eq!(chat_title(F, "  Team  ").as_deref(), Ok("Team"));
    assert_eq!(
        chat_title(F, &"t".repeat(128)).as_deref(),
        Ok("t".repeat(128).as_str())
    );
    assert_eq!(kind(chat_title(F, "")), Invalid);
    assert_eq!(kind(chat_title(F, " \t ")), Invalid);
    assert_eq!(kind(chat_title(F, &"t".repeat(129))), TooLarge);
    assert_eq!(kind(chat_title(F, "a\nb")), Invalid);
    assert_eq!(kind(chat_title(F, "\u{FEFF}title")), Invalid);
}

#[test]
fn message_text_limits_and_required_content() {
    assert_eq!(message_text(F, "hi", true), Ok(()));
    assert_eq!(message_text(F, "line\n\tindented", true), Ok(()));
    assert_eq!(message_text(F, "", false), Ok(()));
    assert_eq!(kind(message_text(F, "", true)), Invalid);
    assert_eq!(kind(message_text(F, " \n\t ", true)), Invalid);
    // The limit counts scalar values: 4096 four-byte emoji pass, one more does not.
    let max = "😀".repeat(MAX_TEXT_CHARS);
    assert_eq!(message_text(F, &max, true), Ok(()));
    assert_eq!(kind(message_text(F, &format!("{max}a"), true)), TooLarge);
    // A huge ASCII body is rejected as too large, not scanned as invalid.
    assert_eq!(
        kind(message_text(F, &"\u{0}".repeat(20_000), true)),
        TooLarge
    );
    assert_eq!(kind(message_text(F, "rtl \u{202E} trick", true)), Invalid);
    assert_eq!(kind(message_text(F, "nul \u{0}", true)), Invalid);
    // Allowed format characters: ZWJ, ZWNJ, directional marks.
    assert_eq!(
        message_text(F, "a\u{200D}b\u{200C}c\u{200E}d\u{200F}", true),
        Ok(())
    );
}

#[test]
fn client_msg_id_shape() {
    for ok in ["a", "0f8e2c1a-3b4d-4c5e-9f60-718293a4b5c6", &"x".repeat(64)] {
        assert_eq!(client_msg_id(F, ok), Ok(()), "{ok:?}");
    }
    assert_eq!(kind(client_msg_id(F, "")), Invalid);
    assert_eq!(kind(client_msg_id(F, &"x".repeat(65))), TooLarge);
    // Lengths are in characters: 33 two-byte characters are bad characters, not too many.
    assert_eq!(kind(client_msg_id(F, &"\u{e9}".repeat(33))), Invalid);
    assert_eq!(kind(file_id(F, &"\u{e9}".repeat(100))), Invalid);
    assert_eq!(kind(client_msg_id(F, "a b")), Invalid);
    assert_eq!(kind(client_msg_id(F, "{uuid}")), Invalid);
}

#[test]
fn emoji_field_maps_size_to_too_large() {
    assert_eq!(emoji(F, "👍"), Ok(()));
    assert_eq!(kind(emoji(F, "ok")), Invalid);
    assert_eq!(kind(emoji(F, "")), Invalid);
    assert_eq!(kind(emoji(F, &"👍".repeat(9))), TooLarge);
}

#[test]
fn queries_are_trimmed_nonempty_and_bounded() {
    assert_eq!(
        message_query(F, "  hello world ").as_deref(),
        Ok("hello world")
    );
    assert_eq!(kind(message_query(F, "   ")), Invalid);
    assert!(message_query(F, &"q".repeat(256)).is_ok());
    assert_eq!(kind(message_query(F, &"q".repeat(257))), TooLarge);
    assert_eq!(kind(message_query(F, "a\nb")), Invalid);
    assert_eq!(user_query(F, "Al").as_deref(), Ok("Al"));
    assert!(user_query(F, &"q".repeat(64)).is_ok());
    assert_eq!(kind(user_query(F, &"q".repeat(65))), TooLarge);
    assert_eq!(kind(user_query(F, "")), Invalid);
}

#[test]
fn page_limits() {
    assert_eq!(page_limit(F, 0), Ok(DEFAULT_PAGE_LIMIT));
    assert_eq!(page_limit(F, 1), Ok(1));
    assert_eq!(page_limit(F, 100), Ok(100));
    assert_eq!(kind(page_limit(F, 101)), Invalid);
    assert_eq!(kind(page_limit(F, u32::MAX)), Invalid);
    assert_eq!(page_limit_or(F, 0, 20), Ok(20));
    assert_eq!(page_limit_or(F, 7, 20), Ok(7));
}

#[test]
fn id_lists() {
    assert_eq!(id_list(F, &[]), Ok(vec![]));
    assert_eq!(id_list(F, &[3, 1, 3, 2, 1]), Ok(vec![3, 1, 2]));
    let hundred: Vec<u64> = (1..=100).collect();
    assert_eq!(id_list(F, &hundred), Ok(hundred.clone()));
    let too_many: Vec<u64> = (1..=101).collect();
    assert_eq!(kind(id_list(F, &too_many)), Invalid);
    assert_eq!(kind(id_list(F, &[1, 0, 2])), Invalid);
}

#[test]
fn error_display_names_the_field() {
    let err = username("register.username", "x").expect_err("too short");
    assert_eq!(
        err.to_string(),
        "register.username: must be at least 3 characters"
    );
}

#[test]
fn file_names_keep_their_last_component_and_refuse_controls() {
    for (raw, kept) in [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("/abs/path/x", "x"),
        ("  spaced name.txt  ", "spaced name.txt"),
        ("", ""),
        ("..hidden", "..hidden"),
    ] {
        assert_eq!(file_name(F, raw).as_deref(), Ok(kept), "{raw:?}");
    }
    for bad in [
        "a/..",
        "..",
        ".",
        "dir/",
        "a\u{0}b",
        "line\nbreak",
        "tab\there",
        "x\u{202e}gpj.exe",
    ] {
        assert_eq!(kind(file_name(F, bad)), Invalid, "{bad:?}");
    }
    assert_eq!(kind(file_name(F, &"n".repeat(256))), TooLarge);
    assert!(file_name(F, &"n".repeat(255)).is_ok());
}

#[test]
fn codes_are_bounded_and_refuse_control_characters() {
    assert_eq!(two_factor_code(F, "123 456", true), Ok(()));
    assert_eq!(two_factor_code(F, "", false), Ok(()));
    assert_eq!(kind(two_factor_code(F, "", true)), Invalid);
    assert_eq!(kind(two_factor_code(F, "123\u{0}456", true)), Invalid);
    assert_eq!(kind(two_factor_code(F, "123456\n", false)), Invalid);
    assert_eq!(kind(two_factor_code(F, &"1".repeat(33), true)), TooLarge);
}
