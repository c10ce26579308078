//! Conformance cases for full-text search.

use super::*;

async fn hits<S: Store>(s: &S, viewer: u64, text: &str, chats: &[(u64, u64)]) -> Vec<(u64, u64)> {
    s.search(SearchQuery {
        viewer,
        text: text.to_string(),
        chats: chats.to_vec(),
        before: None,
        limit: 100,
        senders_blocked: Vec::new(),
    })
    .await
    .expect("search")
    .iter()
    .map(|m| (m.chat_id, m.seq))
    .collect()
}

/// Every word must match, ignoring case; only the last word matches as a prefix.
pub async fn search_words_and_prefix<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let s1 = send(&s, c, a, "the quick brown fox", T0 + 1).await.seq;
    let s2 = send(&s, c, b, "quick thinking", T0 + 2).await.seq;
    let s3 = send(&s, c, a, "brown bread", T0 + 3).await.seq;
    let s4 = send(&s, c, b, "Quixotic adventures", T0 + 4).await.seq;
    send(&s, c, a, "nothing here", T0 + 5).await;
    let scope = [(c, MAX)];
    let find = |text: &'static str| {
        let s = &s;
        async move {
            hits(s, a, text, &scope)
                .await
                .into_iter()
                .map(|(_, seq)| seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find("quick").await, vec![s2, s1]);
    assert_eq!(find("QUICK").await, vec![s2, s1]);
    assert_eq!(find("quick brown").await, vec![s1]);
    assert_eq!(find("brown quick").await, vec![s1]);
    assert_eq!(find("  quick   brown  ").await, vec![s1]);
    assert_eq!(find("bro").await, vec![s3, s1]);
    assert_eq!(find("qui").await, vec![s4, s2, s1]);
    assert_eq!(
        find("bro quick").await,
        Vec::<u64>::new(),
        "only the last word is a prefix"
    );
    assert_eq!(find("quick zebra").await, Vec::<u64>::new());
    assert_eq!(find("adventures").await, vec![s4]);
}

/// Search covers only the given chats up to their seq limits, never deleted content or messages
/// hidden for the viewer.
pub async fn search_scope_and_visibility<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let c1 = private(&s, a, b).await;
    let c2 = private(&s, a, c).await;
    let c3 = private(&s, b, c).await;
    let x1 = send(&s, c1, a, "apple pie", T0 + 1).await;
    let x2 = send(&s, c2, a, "apple tart", T0 + 2).await;
    let x3 = send(&s, c3, b, "apple juice", T0 + 3).await;
    let x4 = send(&s, c1, b, "apple cake", T0 + 4).await;
    let both = [(c1, MAX), (c2, MAX)];
    assert_eq!(
        hits(&s, a, "apple", &both).await,
        vec![(c1, x4.seq), (c2, x2.seq), (c1, x1.seq)]
    );
    assert_eq!(
        hits(&s, a, "apple", &[(c1, x1.seq)]).await,
        vec![(c1, x1.seq)]
    );
    assert!(hits(&s, a, "apple", &[]).await.is_empty());

    s.hide_message(c1, x4.seq, a).await.expect("hide");
    assert_eq!(
        hits(&s, a, "apple", &both).await,
        vec![(c2, x2.seq), (c1, x1.seq)]
    );
    assert_eq!(
        hits(&s, b, "apple", &[(c1, MAX)]).await,
        vec![(c1, x4.seq), (c1, x1.seq)]
    );
    s.delete_message(c2, x2.seq, Actor::unjudged(a), T0 + 5)
        .await
        .expect("delete");
    assert_eq!(hits(&s, a, "apple", &both).await, vec![(c1, x1.seq)]);
    assert!(hits(&s, c, "tart", &[(c2, MAX)]).await.is_empty());

    // Messages of senders the viewer blocked are left out.
    let found = s
        .search(SearchQuery {
            viewer: b,
            text: "apple".into(),
            chats: vec![(c1, MAX), (c3, MAX)],
            before: None,
            limit: 100,
            senders_blocked: vec![a, 999_999],
        })
        .await
        .expect("search");
    let found: Vec<(u64, u64)> = found.iter().map(|m| (m.chat_id, m.seq)).collect();
    assert_eq!(found, vec![(c1, x4.seq), (c3, x3.seq)]);
}

/// Query syntax of any search engine in the input is plain text: it never errors and never
/// changes what is searched.
pub async fn search_query_syntax_is_harmless<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let hello = send(&s, c, a, "hello world", T0 + 1).await.seq;
    let ops = send(&s, c, a, "AND OR NOT", T0 + 2).await.seq;
    let quoted = send(&s, c, a, "say \"quoted\" text", T0 + 3).await.seq;
    let star = send(&s, c, a, "star* power", T0 + 4).await.seq;
    send(&s, c, a, "col:umn NEAR(x)", T0 + 5).await;
    let scope = [(c, MAX)];
    let hostile = [
        "\"",
        "\"\"",
        "\"\"\"",
        "*",
        "**",
        "hello\"",
        "\"hello",
        "AND",
        "OR",
        "NOT",
        "NOT hello",
        "hello AND",
        "hello OR world",
        "NEAR(hello world)",
        "NEAR(",
        "text:hello",
        "{text}:hello",
        "^hello",
        "hello -world",
        "(",
        ")",
        "()",
        "'",
        "''",
        "+",
        "-",
        ":",
        "\\",
        "%",
        "_",
        "🙂",
        "'; DROP TABLE messages; --",
        "hello* OR *",
        "a:b:c",
        "[hello]",
        "$where",
        "{\"$ne\":1}",
        ".*",
        "(?i)hello",
        "hello~2",
        "hello^3",
    ];
    for query in hostile {
        s.search(SearchQuery {
            viewer: a,
            text: query.to_string(),
            chats: scope.to_vec(),
            before: None,
            limit: 10,
            senders_blocked: Vec::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("query {query:?} failed: {e}"));
    }
    let seqs_of =
        |found: Vec<(u64, u64)>| found.into_iter().map(|(_, seq)| seq).collect::<Vec<_>>();
    assert_eq!(seqs_of(hits(&s, a, "AND", &scope).await), vec![ops]);
    assert_eq!(
        seqs_of(hits(&s, a, "NOT hello", &scope).await),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_of(hits(&s, a, "hello OR world", &scope).await),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs_of(hits(&s, a, "\"quoted\"", &scope).await),
        vec![quoted]
    );
    assert_eq!(seqs_of(hits(&s, a, "star*", &scope).await), vec![star]);
    assert_eq!(seqs_of(hits(&s, a, "hello", &scope).await), vec![hello]);
    assert_eq!(s.chat(c).await.expect("chat").expect("intact").last_seq, 6);
}

/// Pages continue strictly after the cursor, newest first with ties broken by chat and seq.
pub async fn search_paging<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let c1 = private(&s, a, b).await;
    let c2 = private(&s, a, c).await;
    for i in 1..=7 {
        send(&s, c1, a, &format!("match number {i}"), T0 + i).await;
    }
    send(&s, c2, a, "match other", T0 + 4).await;
    let query = |before| SearchQuery {
        viewer: a,
        text: "match".into(),
        chats: vec![(c1, MAX), (c2, MAX)],
        before,
        limit: 3,
        senders_blocked: Vec::new(),
    };
    let full = s
        .search(SearchQuery {
            limit: 100,
            senders_blocked: Vec::new(),
            ..query(None)
        })
        .await
        .expect("search");
    assert_eq!(full.len(), 8);
    let keys: Vec<(i64, u64, u64)> = full
        .iter()
        .map(|m| (m.sent_at_ms, m.chat_id, m.seq))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "strictly descending: {keys:?}"
    );
    let tie = keys.iter().position(|k| k.0 == T0 + 4).expect("tie");
    assert_eq!(
        keys[tie].1.max(keys[tie + 1].1),
        keys[tie].1,
        "higher chat id first"
    );

    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.search(query(before)).await.expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some((last.sent_at_ms, last.chat_id, last.seq));
        paged.extend(page);
    }
    assert_eq!(paged, full);
}

/// A store whose message texts are sealed before they are stored cannot search them: search is
/// refused as unsupported (saying why), never answered with nothing found.
pub async fn search_refused_when_sealed<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    send(&s, c, a, "the quick brown fox", T0 + 1).await;
    // Also a query without a word to look for, and a caller without chats.
    for (text, chats) in [
        ("quick", vec![(c, MAX)]),
        ("!!!", vec![(c, MAX)]),
        ("quick", vec![]),
    ] {
        let refused = s
            .search(SearchQuery {
                viewer: a,
                text: text.to_string(),
                chats: chats.clone(),
                before: None,
                limit: 10,
                senders_blocked: Vec::new(),
            })
            .await;
        match refused {
            Err(StoreError::Unsupported(why)) => assert!(why.contains("encrypted"), "{why}"),
            other => panic!("search {text:?} in {chats:?} on a sealed store: {other:?}"),
        }
    }
}
