//! The in-memory suggestion index: every word of every suggestion, folded,
//! in one `fst` map, searched with a typo-tolerant automaton.
//!
//! Matching follows Meilisearch's rules for autocomplete:
//! - text is folded to lower-case ASCII with `deunicode` (`São` → `sao`,
//!   `Zürich` → `zurich`) and cut into words at anything that is not a
//!   letter or a digit;
//! - every word of the query must match a word of the suggestion; the last
//!   one may match a word's beginning (prefix), the others only whole
//!   words, unless the query ends with a separator (`sao ` has finished
//!   its last word);
//! - a word of 1-4 characters must match exactly, of 5-8 may have one
//!   typo, of 9 or more two. A typo is an edit of the optimal string
//!   alignment distance: a letter added, missing, replaced, or two
//!   neighbours swapped;
//! - at most [`MAX_QUERY_WORDS`] words count, as in Meilisearch.
//!
//! Ranking, first difference wins:
//! 1. the suggestion whose IATA `code` is the whole query (`lis`, `LIS`);
//! 2. fewer typos over all words;
//! 3. more whole-word matches (`paris` matches `Paris` before `Parisi`);
//! 4. earlier attributes: [`Attribute`] order, code, name, aliases,
//!    country (a country's own suggestion before its airports);
//! 5. `popularity`, higher first; then the name, for a stable order.
//!
//! Proximity (Meilisearch's third rule) is left out: suggestions are a few
//! words long, where word order rarely separates candidates.
//!
//! The words are the keys of an `fst::Map` whose values index posting
//! lists of `(suggestion, attribute)`. Suggestions are numbered in ranking
//! order of the last rule (popularity, then name), so the number itself
//! breaks ties and no comparison reads the suggestions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fst::{Automaton, IntoStreamer, Streamer};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// Words of a query beyond these are ignored (Meilisearch's limit).
pub const MAX_QUERY_WORDS: usize = 10;
/// Query words longer than this match nothing: no place name has a longer
/// word that a visitor types out, and the automaton's rows stay short.
const MAX_WORD_BYTES: usize = 64;

/// What a suggestion names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Airport,
    City,
    Country,
}

impl Kind {
    pub const NAMES: &'static str = "airport, city or country";

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "airport" => Some(Self::Airport),
            "city" => Some(Self::City),
            "country" => Some(Self::Country),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Airport => "airport",
            Self::City => "city",
            Self::Country => "country",
        }
    }
}

/// Where a word was found, in ranking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Attribute {
    Code = 0,
    Name = 1,
    /// `metadata.city` and `metadata.aliases`.
    Aliases = 2,
    Country = 3,
}

// Borrowed from the index's one string of texts.
/// One suggestion as the public route answers it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion<'a> {
    pub id: &'a str,
    /// The unique key (see the module documentation of `suggest`).
    pub query: &'a str,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// IATA code of an airport or a city (`LIS`, `NYC`), ISO 3166 code of
    /// a country (`PT`).
    pub code: Option<&'a str>,
    pub name: &'a str,
    pub country: Option<&'a str>,
    pub popularity: i32,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<&'a RawValue>,
}

/// A suggestion to index, as read from a row: `metadata` is its JSON text.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub id: &'a str,
    pub query: &'a str,
    pub kind: Kind,
    pub code: Option<&'a str>,
    pub name: &'a str,
    pub country: Option<&'a str>,
    pub popularity: i32,
    pub metadata: Option<&'a str>,
}

impl Entry<'_> {
    /// Calls `each` with every word to index, folded, and the attribute it
    /// came from, in attribute order. One buffer serves every text: the
    /// build runs this for every suggestion of a cold container.
    fn each_word(&self, buffer: &mut String, mut each: impl FnMut(&str, Attribute)) {
        let mut add = |text: &str, attribute: Attribute| {
            fold_into(text, buffer);
            for word in buffer
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                each(word, attribute);
            }
        };
        if let Some(code) = self.code {
            add(code, Attribute::Code);
        }
        add(self.name, Attribute::Name);
        // Only metadata that can hold a searched field is parsed.
        if let Some(metadata) = self
            .metadata
            .filter(|m| m.contains("\"city\"") || m.contains("\"aliases\""))
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        {
            if let Some(city) = metadata.get("city").and_then(Value::as_str) {
                add(city, Attribute::Aliases);
            }
            for alias in metadata
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                add(alias, Attribute::Aliases);
            }
        }
        if let Some(country) = self.country {
            add(country, Attribute::Country);
        }
    }
}

/// Where one text of a suggestion is in the index's `text`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };
}

/// A suggestion in the index: its texts' spans, its type and popularity.
/// About 60 bytes; the texts of all suggestions share one string, so a
/// cold container allocates no string per suggestion.
#[derive(Debug, Clone, Copy)]
struct Doc {
    id: Span,
    query: Span,
    code: Span,
    name: Span,
    country: Span,
    metadata: Span,
    popularity: i32,
    kind: Kind,
}

/// The text `span` names.
fn slice(text: &str, span: Span) -> &str {
    &text[span.start as usize..span.end as usize]
}

/// `text` transliterated to lower-case ASCII.
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    fold_into(text, &mut folded);
    folded
}

/// [`fold`] into `buffer` (cleared first). ASCII text, most place names,
/// is only lower-cased: deunicode would copy it unchanged.
fn fold_into(text: &str, buffer: &mut String) {
    use deunicode::AsciiChars as _;
    buffer.clear();
    if text.is_ascii() {
        buffer.push_str(text);
    } else {
        // Character by character into the buffer: no string per text.
        // What deunicode cannot transliterate is dropped, as the word
        // split would drop its placeholder.
        buffer.extend(text.ascii_chars().map(|c| c.unwrap_or("")));
    }
    buffer.make_ascii_lowercase();
}

/// The words of `text`, folded.
pub fn fold_words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Typos a query word of `len` characters may have (Meilisearch's
/// defaults: `minWordSizeForTypos` 5 and 9).
pub fn typos_allowed(len: usize) -> u8 {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    attribute: Attribute,
    /// The suggestion's, here too: the type filter reads no other memory.
    kind: Kind,
}

/// The index of one load of `search_suggestions`.
pub struct Index {
    /// In ranking order of popularity, then folded name.
    docs: Vec<Doc>,
    /// Every text of every suggestion, one after another.
    text: String,
    /// `docs[i].kind`, kept apart: the type filter reads it per posting.
    kinds: Vec<Kind>,
    words: fst::Map<Vec<u8>>,
    /// Every word's postings, one after another: word `w`'s are
    /// `postings[ends[w - 1]..ends[w]]` (one array, not a list per word:
    /// a cold container builds this for every word).
    postings: Vec<Posting>,
    ends: Vec<u32>,
    /// Upper-case code → suggestions with it.
    codes: HashMap<String, Vec<u32>>,
    /// Answers to one-word queries of at most [`MEMO_WORD_BYTES`]: the
    /// first letters a visitor types begin the most words (`b` begins
    /// thousands), are the slowest to rank, and are what every visitor
    /// types first; each is ranked once per index ([`MEMO_CAPACITY`] at
    /// most), for [`super::MAX_LIMIT`] answers.
    short_answers: Mutex<HashMap<ShortQuery, Arc<[u32]>>>,
}

/// A remembered one-word query: the word, whether it is a prefix, the type.
type ShortQuery = (Box<str>, bool, Option<Kind>);

/// One-word queries up to this many bytes are remembered (no typo is
/// allowed below five characters, so their answers are cheap to key).
const MEMO_WORD_BYTES: usize = 3;
/// At most this many remembered answers per index (36^3 three-character
/// words, each of four types, would be 186,624; the common ones fit).
const MEMO_CAPACITY: usize = 20_000;

/// An index being built, one suggestion at a time: a cold container adds
/// each row as it arrives, so folding and word numbering run while
/// PostgreSQL is still sending the rest ([`super::store::load`]).
/// Suggestions get provisional numbers in arrival order; [`Self::finish`]
/// renumbers them in ranking order.
#[derive(Default)]
pub struct IndexBuilder {
    docs: Vec<Doc>,
    text: String,
    /// Per suggestion: minus popularity, and its folded name's range in
    /// `names` (one buffer, not a string per suggestion).
    order: Vec<(i32, u32, u32)>,
    names: String,
    word_numbers: HashMap<String, u32>,
    /// (word number, posting with the provisional suggestion number).
    found: Vec<(u32, Posting)>,
    codes: HashMap<String, Vec<u32>>,
    buffer: String,
}

impl IndexBuilder {
    pub fn add(&mut self, doc: &Entry<'_>) -> anyhow::Result<()> {
        let number = u32::try_from(self.docs.len())?;
        fold_into(doc.name, &mut self.buffer);
        let start = u32::try_from(self.names.len())?;
        self.names.push_str(&self.buffer);
        self.order
            .push((-doc.popularity, start, u32::try_from(self.names.len())?));
        let first_of_doc = self.found.len();
        let (word_numbers, found) = (&mut self.word_numbers, &mut self.found);
        doc.each_word(&mut self.buffer, |word, attribute| {
            let next = u32::try_from(word_numbers.len()).unwrap_or(u32::MAX);
            // A key is allocated only for a word not seen before.
            let word_number = match word_numbers.get(word) {
                Some(&known) => known,
                None => {
                    word_numbers.insert(word.to_owned(), next);
                    next
                }
            };
            // Words of one suggestion arrive in attribute order: the first
            // posting of a word is its best.
            if !found[first_of_doc..].iter().any(|(w, _)| *w == word_number) {
                found.push((
                    word_number,
                    Posting {
                        doc: number,
                        attribute,
                        kind: doc.kind,
                    },
                ));
            }
        });
        if let Some(code) = doc.code {
            self.codes
                .entry(code.to_ascii_uppercase())
                .or_default()
                .push(number);
        }
        let mut keep = |text: Option<&str>| -> anyhow::Result<Span> {
            let Some(text) = text else {
                return Ok(Span::NONE);
            };
            let start = u32::try_from(self.text.len())?;
            self.text.push_str(text);
            Ok(Span {
                start,
                end: u32::try_from(self.text.len())?,
            })
        };
        let stored = Doc {
            id: keep(Some(doc.id))?,
            query: keep(Some(doc.query))?,
            code: keep(doc.code)?,
            name: keep(Some(doc.name))?,
            country: keep(doc.country)?,
            metadata: keep(doc.metadata)?,
            popularity: doc.popularity,
            kind: doc.kind,
        };
        self.docs.push(stored);
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<Index> {
        let Self {
            docs,
            text,
            order,
            names,
            word_numbers,
            mut found,
            mut codes,
            ..
        } = self;
        // Ranking order of the last rule: popularity, folded name, id.
        let name = |at: usize| &names[order[at].1 as usize..order[at].2 as usize];
        let mut ranked: Vec<u32> = (0..u32::try_from(docs.len())?).collect();
        ranked.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            order[a]
                .0
                .cmp(&order[b].0)
                .then_with(|| name(a).cmp(name(b)))
                .then_with(|| slice(&text, docs[a].id).cmp(slice(&text, docs[b].id)))
        });
        let mut final_number = vec![0u32; docs.len()];
        for (position, &provisional) in ranked.iter().enumerate() {
            final_number[provisional as usize] = u32::try_from(position)?;
        }
        let docs: Vec<Doc> = ranked.iter().map(|&at| docs[at as usize]).collect();
        for (_, posting) in &mut found {
            posting.doc = final_number[posting.doc as usize];
        }
        for numbers in codes.values_mut() {
            for number in numbers.iter_mut() {
                *number = final_number[*number as usize];
            }
            numbers.sort_unstable();
        }
        // The fst numbers words in byte order; `rank[w]` is word `w`'s.
        let mut words: Vec<(String, u32)> = word_numbers.into_iter().collect();
        words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut rank = vec![0u32; words.len()];
        let mut builder = fst::MapBuilder::memory();
        for (position, (word, number)) in words.iter().enumerate() {
            builder.insert(word.as_bytes(), position as u64)?;
            rank[*number as usize] = u32::try_from(position)?;
        }
        drop(words);
        // Grouped by word in fst order (a counting sort), then each word's
        // postings by suggestion.
        let mut counts = vec![0u32; rank.len()];
        for (word, _) in &found {
            counts[rank[*word as usize] as usize] += 1;
        }
        let mut ends = Vec::with_capacity(counts.len());
        let mut total = 0u32;
        for count in &counts {
            total += count;
            ends.push(total);
        }
        let mut next: Vec<u32> = ends
            .iter()
            .zip(&counts)
            .map(|(end, count)| end - count)
            .collect();
        let empty = Posting {
            doc: 0,
            attribute: Attribute::Code,
            kind: Kind::Airport,
        };
        let mut postings = vec![empty; found.len()];
        for (word, posting) in found {
            let slot = &mut next[rank[word as usize] as usize];
            postings[*slot as usize] = posting;
            *slot += 1;
        }
        let mut start = 0;
        for &end in &ends {
            postings[start..end as usize].sort_unstable_by_key(|p| p.doc);
            start = end as usize;
        }
        Ok(Index {
            kinds: docs.iter().map(|d| d.kind).collect(),
            docs,
            text,
            words: builder.into_map(),
            postings,
            ends,
            codes,
            short_answers: Mutex::new(HashMap::new()),
        })
    }
}

impl Index {
    pub fn build(docs: &[Entry<'_>]) -> anyhow::Result<Self> {
        let mut builder = IndexBuilder::default();
        for doc in docs {
            builder.add(doc)?;
        }
        builder.finish()
    }

    /// Suggestion `number` of the index's ranking order.
    pub fn suggestion(&self, number: usize) -> Suggestion<'_> {
        let doc = &self.docs[number];
        let text = |span: Span| (span.start != u32::MAX).then(|| slice(&self.text, span));
        Suggestion {
            id: slice(&self.text, doc.id),
            query: slice(&self.text, doc.query),
            kind: doc.kind,
            code: text(doc.code),
            name: slice(&self.text, doc.name),
            country: text(doc.country),
            popularity: doc.popularity,
            // Stored as the database sent it, so valid JSON.
            metadata: text(doc.metadata).and_then(|m| serde_json::from_str(m).ok()),
        }
    }

    /// The postings of the word the fst numbered `value`.
    fn postings_of(&self, value: u64) -> Option<&[Posting]> {
        let word = usize::try_from(value).ok()?;
        let end = *self.ends.get(word)? as usize;
        let start = match word {
            0 => 0,
            _ => self.ends[word - 1] as usize,
        };
        self.postings.get(start..end)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Distinct words indexed.
    pub fn words(&self) -> usize {
        self.words.len()
    }

    /// The best `limit` suggestions for what the visitor typed, of `kind`
    /// when given.
    pub fn search(&self, typed: &str, kind: Option<Kind>, limit: usize) -> Vec<Suggestion<'_>> {
        let folded = fold(typed);
        let mut words: Vec<&str> = folded
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Vec::new();
        }
        let last_is_prefix = folded
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        words.truncate(MAX_QUERY_WORDS);
        let exact_code = match words.as_slice() {
            [only] if only.len() == 3 && only.bytes().all(|b| b.is_ascii_alphabetic()) => self
                .codes
                .get(&only.to_ascii_uppercase())
                .map(Vec::as_slice)
                .unwrap_or_default(),
            _ => &[],
        };
        if limit == 0 {
            return Vec::new();
        }
        if let [word] = words.as_slice() {
            if word.len() > MEMO_WORD_BYTES {
                return self.docs_of(&self.search_word(
                    word,
                    last_is_prefix,
                    kind,
                    exact_code,
                    limit,
                ));
            }
            let key = (Box::<str>::from(*word), last_is_prefix, kind);
            let known = self
                .short_answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .cloned();
            let answers = match known {
                Some(answers) => answers,
                None => {
                    let answers: Arc<[u32]> = self
                        .search_word(word, last_is_prefix, kind, exact_code, super::MAX_LIMIT)
                        .into();
                    let mut memo = self
                        .short_answers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if memo.len() < MEMO_CAPACITY {
                        memo.insert(key, Arc::clone(&answers));
                    }
                    answers
                }
            };
            return self.docs_of(&answers[..limit.min(answers.len())]);
        }
        let last = words.len() - 1;
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.reset(self.docs.len());
            for (number, word) in words.iter().enumerate() {
                let prefix = number == last && last_is_prefix;
                self.match_word(word, number, prefix, kind, scratch);
                scratch.close_word();
            }
            let wanted = words.len();
            let mut ranked: Vec<(Rank, u32)> = scratch
                .touched
                .iter()
                .filter(|&&doc| usize::from(scratch.totals[doc as usize].words) == wanted)
                .map(|&doc| {
                    let total = &scratch.totals[doc as usize];
                    (total.rank(exact_code.contains(&doc)), doc)
                })
                .collect();
            if limit < ranked.len() {
                if limit > 0 {
                    ranked.select_nth_unstable(limit - 1);
                }
                ranked.truncate(limit);
            }
            ranked.sort_unstable();
            ranked
                .into_iter()
                .map(|(_, doc)| self.suggestion(doc as usize))
                .collect()
        })
    }

    /// [`Index::search`] for one word, the common case while a visitor
    /// types (and the costliest: `b` begins thousands of words): every
    /// posting becomes one number that sorts in ranking order, `exact code
    /// | quality | suggestion`, and only the best few are sorted.
    fn search_word(
        &self,
        word: &str,
        prefix: bool,
        kind: Option<Kind>,
        exact_code: &[u32],
        limit: usize,
    ) -> Vec<u32> {
        if word.len() > MAX_WORD_BYTES {
            return Vec::new();
        }
        let automaton = Typos {
            word: word.as_bytes(),
            max: typos_allowed(word.len()),
            prefix,
        };
        let mut keys: Vec<u64> = Vec::new();
        let mut stream = self.words.search_with_state(&automaton).into_stream();
        while let Some((key, value, state)) = stream.next() {
            let Some(quality) = automaton.quality(&state, key) else {
                continue;
            };
            let Some(postings) = self.postings_of(value) else {
                continue;
            };
            for posting in postings.iter() {
                if kind.is_some_and(|k| posting.kind != k) {
                    continue;
                }
                let not_code = u64::from(!exact_code.contains(&posting.doc));
                let packed = u64::from(quality.with(posting.attribute));
                keys.push(not_code << 40 | packed << 32 | u64::from(posting.doc));
            }
        }
        best_distinct(&mut keys, limit)
    }

    fn docs_of(&self, numbers: &[u32]) -> Vec<Suggestion<'_>> {
        numbers
            .iter()
            .map(|&doc| self.suggestion(doc as usize))
            .collect()
    }

    fn match_word(
        &self,
        word: &str,
        number: usize,
        prefix: bool,
        kind: Option<Kind>,
        scratch: &mut Scratch,
    ) {
        if word.len() > MAX_WORD_BYTES {
            return;
        }
        let automaton = Typos {
            word: word.as_bytes(),
            max: typos_allowed(word.len()),
            prefix,
        };
        let mut stream = self.words.search_with_state(&automaton).into_stream();
        while let Some((key, value, state)) = stream.next() {
            let Some(quality) = automaton.quality(&state, key) else {
                continue;
            };
            let Some(postings) = self.postings_of(value) else {
                continue;
            };
            for posting in postings.iter() {
                if kind.is_some_and(|k| self.kinds[posting.doc as usize] != k) {
                    continue;
                }
                scratch.offer(number, posting.doc, quality.with(posting.attribute));
            }
        }
    }

    /// Every suggestion, in index order: for the linear-scan baseline of
    /// the benchmark.
    pub fn all(&self) -> impl Iterator<Item = Suggestion<'_>> {
        (0..self.docs.len()).map(|number| self.suggestion(number))
    }
}

/// The suggestions of the `limit` smallest keys (a suggestion's number in
/// the low 32 bits), each once, at its best key. Only a few more than
/// `limit` keys are sorted, unless repeats leave too few.
fn best_distinct(keys: &mut [u64], limit: usize) -> Vec<u32> {
    let mut take = (limit * 4).min(keys.len());
    loop {
        if take == 0 {
            return Vec::new();
        }
        if take < keys.len() {
            keys.select_nth_unstable(take - 1);
        }
        let head = &mut keys[..take];
        head.sort_unstable();
        let mut docs: Vec<u32> = Vec::with_capacity(limit);
        for key in head.iter() {
            // The low 32 bits are the suggestion's number.
            let doc = u32::try_from(key & u64::from(u32::MAX)).expect("masked to 32 bits");
            if !docs.contains(&doc) {
                docs.push(doc);
                if docs.len() == limit {
                    return docs;
                }
            }
        }
        if take == keys.len() {
            return docs;
        }
        take = keys.len();
    }
}

/// How one query word matched one indexed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quality {
    typos: u8,
    prefix: bool,
}

impl Quality {
    /// Packed so that the smaller number is the better match: typos, then
    /// whole word before prefix, then the attribute.
    fn with(self, attribute: Attribute) -> u8 {
        (self.typos << 3) | (u8::from(self.prefix) << 2) | attribute as u8
    }
}

/// One suggestion's standing over the words matched so far.
#[derive(Debug, Clone, Copy, Default)]
struct Total {
    words: u8,
    typos: u8,
    prefixes: u8,
    attributes: u8,
    /// The best match of the word being matched, packed; 0 for none.
    current: u8,
}

/// Lexicographic: smaller ranks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank(u32);

impl Total {
    fn rank(&self, exact_code: bool) -> Rank {
        if exact_code {
            return Rank(0);
        }
        Rank(
            1 << 24
                | u32::from(self.typos) << 16
                | u32::from(self.prefixes) << 8
                | u32::from(self.attributes),
        )
    }
}

/// Per-thread working memory of [`Index::search`], reused between queries:
/// one slot per suggestion, reset through the list of those touched.
#[derive(Default)]
struct Scratch {
    totals: Vec<Total>,
    touched: Vec<u32>,
    /// Suggestions matched by the word being matched.
    matched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    fn reset(&mut self, docs: usize) {
        for &doc in &self.touched {
            if let Some(total) = self.totals.get_mut(doc as usize) {
                *total = Total::default();
            }
        }
        self.touched.clear();
        self.matched.clear();
        self.totals.resize(docs, Total::default());
    }

    /// `packed` (a [`Quality::with`]) for `doc` and word `number`; ignored
    /// for a suggestion an earlier word did not match.
    fn offer(&mut self, number: usize, doc: u32, packed: u8) {
        let total = &mut self.totals[doc as usize];
        if usize::from(total.words) != number {
            return;
        }
        let packed = packed + 1;
        if total.current == 0 {
            self.matched.push(doc);
            if total.words == 0 {
                self.touched.push(doc);
            }
            total.current = packed;
        } else if packed < total.current {
            total.current = packed;
        }
    }

    /// Adds the current word's best match to each suggestion it matched.
    fn close_word(&mut self) {
        for &doc in &self.matched {
            let total = &mut self.totals[doc as usize];
            let best = total.current - 1;
            total.current = 0;
            total.words += 1;
            total.typos += best >> 3;
            total.prefixes += (best >> 2) & 1;
            total.attributes += best & 3;
        }
        self.matched.clear();
    }
}

/// A query word as an automaton over indexed words: a row of the optimal
/// string alignment distance per byte read (Damerau's transposition
/// included, which `fst::automaton::Levenshtein` lacks), so a match also
/// says how many typos it took.
struct Typos<'a> {
    word: &'a [u8],
    max: u8,
    /// Whether a word that starts like `word` matches (the last word).
    prefix: bool,
}

#[derive(Debug, Clone)]
enum State {
    Dead,
    /// A prefix of the indexed word is within `typos` of the query word
    /// and no longer prefix can come closer: every extension matches.
    Matched {
        typos: u8,
    },
    Rows {
        /// Distances of the query word's prefixes to the bytes read so far
        /// (`current`) and to all but the last (`previous`, for swaps).
        previous: Vec<u8>,
        current: Vec<u8>,
        last: Option<u8>,
        /// Fewest typos of the query word against any prefix read.
        best_prefix: u8,
    },
}

impl Typos<'_> {
    /// How `key`, matched in `state`, matches the query word.
    fn quality(&self, state: &State, key: &[u8]) -> Option<Quality> {
        match state {
            State::Dead => None,
            State::Matched { typos: 0 } => Some(Quality {
                typos: 0,
                prefix: key != self.word,
            }),
            State::Matched { typos } => Some(Quality {
                typos: *typos,
                prefix: true,
            }),
            State::Rows {
                current,
                best_prefix,
                ..
            } => {
                let whole = current[self.word.len()];
                if whole <= self.max && (!self.prefix || whole <= *best_prefix) {
                    Some(Quality {
                        typos: whole,
                        prefix: false,
                    })
                } else if self.prefix && *best_prefix <= self.max {
                    Some(Quality {
                        typos: *best_prefix,
                        prefix: true,
                    })
                } else {
                    None
                }
            }
        }
    }
}

impl Automaton for Typos<'_> {
    type State = State;

    fn start(&self) -> State {
        let current: Vec<u8> = (0..=self.word.len())
            .map(|i| u8::try_from(i).unwrap_or(u8::MAX).min(self.max + 1))
            .collect();
        let best_prefix = current[self.word.len()];
        if self.prefix && best_prefix == 0 {
            return State::Matched { typos: 0 };
        }
        State::Rows {
            previous: Vec::new(),
            current,
            last: None,
            best_prefix,
        }
    }

    fn is_match(&self, state: &State) -> bool {
        match state {
            State::Dead => false,
            State::Matched { .. } => true,
            State::Rows {
                current,
                best_prefix,
                ..
            } => current[self.word.len()] <= self.max || (self.prefix && *best_prefix <= self.max),
        }
    }

    fn can_match(&self, state: &State) -> bool {
        !matches!(state, State::Dead)
    }

    fn will_always_match(&self, state: &State) -> bool {
        matches!(state, State::Matched { .. })
    }

    fn accept(&self, state: &State, byte: u8) -> State {
        let State::Rows {
            previous,
            current,
            last,
            best_prefix,
        } = state
        else {
            return state.clone();
        };
        let cap = self.max + 1;
        let n = self.word.len();
        let mut next = Vec::with_capacity(n + 1);
        next.push(current[0].saturating_add(1).min(cap));
        for i in 1..=n {
            let substitution = current[i - 1] + u8::from(self.word[i - 1] != byte);
            let mut distance = substitution
                .min(current[i].saturating_add(1))
                .min(next[i - 1].saturating_add(1));
            if i >= 2
                && *last == Some(self.word[i - 1])
                && self.word[i - 2] == byte
                && !previous.is_empty()
            {
                distance = distance.min(previous[i - 2].saturating_add(1));
            }
            next.push(distance.min(cap));
        }
        let best_prefix = (*best_prefix).min(next[n]);
        let alive = next.iter().any(|&d| d <= self.max);
        if self.prefix && best_prefix <= self.max && (best_prefix == 0 || !alive) {
            return State::Matched { typos: best_prefix };
        }
        if !alive {
            return State::Dead;
        }
        State::Rows {
            previous: current.clone(),
            current: next,
            last: Some(byte),
            best_prefix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(
        code: Option<&str>,
        kind: Kind,
        name: &str,
        country: Option<&str>,
    ) -> Entry<'static> {
        suggestion_with(code, kind, name, country, 0)
    }

    /// Leaked: a test's few strings live as long as the test.
    fn leak(text: String) -> &'static str {
        Box::leak(text.into_boxed_str())
    }

    fn suggestion_with(
        code: Option<&str>,
        kind: Kind,
        name: &str,
        country: Option<&str>,
        popularity: i32,
    ) -> Entry<'static> {
        Entry {
            id: leak(format!(
                "{}-{name}-{}",
                kind.as_str(),
                country.unwrap_or("")
            )),
            query: leak(format!("{}:{name}", kind.as_str())),
            kind,
            code: code.map(|c| leak(c.to_owned())),
            name: leak(name.to_owned()),
            country: country.map(|c| leak(c.to_owned())),
            popularity,
            metadata: None,
        }
    }

    fn names(index: &Index, typed: &str) -> Vec<String> {
        index
            .search(typed, None, 8)
            .into_iter()
            .map(|s| s.name.to_owned())
            .collect()
    }

    fn sample() -> Index {
        Index::build(&[
            suggestion(
                Some("LIS"),
                Kind::Airport,
                "Lisbon Humberto Delgado Airport",
                Some("Portugal"),
            ),
            suggestion(None, Kind::City, "Lisbon", Some("Portugal")),
            suggestion(Some("PT"), Kind::Country, "Portugal", None),
            suggestion(
                Some("OPO"),
                Kind::Airport,
                "Porto Francisco Sá Carneiro Airport",
                Some("Portugal"),
            ),
            suggestion(
                Some("GRU"),
                Kind::Airport,
                "São Paulo Guarulhos International Airport",
                Some("Brazil"),
            ),
            suggestion(None, Kind::City, "São Paulo", Some("Brazil")),
            suggestion(None, Kind::City, "Rome", Some("Italy")),
            suggestion(None, Kind::City, "Amsterdam", Some("Netherlands")),
        ])
        .expect("index")
    }

    #[test]
    fn folding_drops_accents_and_case() {
        assert_eq!(
            fold_words("São Paulo–Guarulhos"),
            ["sao", "paulo", "guarulhos"]
        );
        assert_eq!(fold("ZÜRICH"), "zurich");
    }

    #[test]
    fn the_typo_budget_grows_at_five_and_nine_characters() {
        assert_eq!(typos_allowed(4), 0);
        assert_eq!(typos_allowed(5), 1);
        assert_eq!(typos_allowed(8), 1);
        assert_eq!(typos_allowed(9), 2);
    }

    #[test]
    fn the_automaton_counts_typos_with_swaps_as_one() {
        let quality = |word: &str, key: &str, prefix: bool| {
            let automaton = Typos {
                word: word.as_bytes(),
                max: 2,
                prefix,
            };
            let mut state = automaton.start();
            for &b in key.as_bytes() {
                state = automaton.accept(&state, b);
            }
            automaton
                .is_match(&state)
                .then(|| automaton.quality(&state, key.as_bytes()))
                .flatten()
        };
        assert_eq!(
            quality("lisbon", "lisbon", false),
            Some(Quality {
                typos: 0,
                prefix: false
            })
        );
        assert_eq!(
            quality("lisbno", "lisbon", false),
            Some(Quality {
                typos: 1,
                prefix: false
            })
        );
        assert_eq!(
            quality("lisb", "lisbon", true),
            Some(Quality {
                typos: 0,
                prefix: true
            })
        );
        assert_eq!(
            quality("lusb", "lisbon", true),
            Some(Quality {
                typos: 1,
                prefix: true
            })
        );
        assert_eq!(
            quality("amstrdm", "amsterdam", false),
            Some(Quality {
                typos: 2,
                prefix: false
            })
        );
        assert_eq!(quality("xyzzy", "lisbon", true), None);
    }

    #[test]
    fn a_remembered_short_answer_is_the_answer_a_fresh_search_gives() {
        let index = sample();
        let codes = |found: Vec<Suggestion>| -> Vec<String> {
            found.iter().map(|s| s.name.to_owned()).collect()
        };
        let first = codes(index.search("p", None, 2));
        let remembered = codes(index.search("p", None, 2));
        let longer = codes(index.search("p", None, 8));
        assert_eq!(first, remembered);
        assert_eq!(first[..], longer[..2]);
        assert_eq!(
            codes(index.search("p", Some(Kind::Country), 8)),
            vec!["Portugal"]
        );
        let fresh =
            codes(index.docs_of(&index.search_word("p", true, None, &[], super::super::MAX_LIMIT)));
        assert_eq!(longer, fresh);
    }

    #[test]
    fn a_prefix_of_the_last_word_matches() {
        assert_eq!(
            names(&sample(), "lisb")[..2],
            ["Lisbon", "Lisbon Humberto Delgado Airport"]
        );
    }

    #[test]
    fn earlier_words_must_be_whole() {
        assert!(names(&sample(), "lisb airport").is_empty());
        assert_eq!(
            names(&sample(), "lisbon airp"),
            ["Lisbon Humberto Delgado Airport"]
        );
    }

    #[test]
    fn accents_and_case_do_not_matter() {
        assert_eq!(names(&sample(), "SAO pa")[0], "São Paulo");
    }

    #[test]
    fn an_exact_code_comes_first() {
        assert_eq!(
            names(&sample(), "lis")[0],
            "Lisbon Humberto Delgado Airport"
        );
        assert_eq!(
            names(&sample(), "OPO")[0],
            "Porto Francisco Sá Carneiro Airport"
        );
    }

    #[test]
    fn the_earlier_attribute_ranks_first() {
        assert_eq!(names(&sample(), "portugal")[0], "Portugal");
    }

    #[test]
    fn short_words_allow_no_typo_and_longer_ones_do() {
        assert!(names(&sample(), "rone").is_empty());
        assert_eq!(
            names(&sample(), "lisbin"),
            ["Lisbon", "Lisbon Humberto Delgado Airport"]
        );
        assert_eq!(names(&sample(), "amstrrdan"), ["Amsterdam"]);
    }

    #[test]
    fn popularity_breaks_ties() {
        let index = Index::build(&[
            suggestion_with(None, Kind::City, "Paris", Some("France"), 5),
            suggestion_with(None, Kind::City, "Paris", Some("United States"), 50),
        ])
        .expect("index");
        let found = index.search("par", None, 8);
        assert_eq!(found[0].country, Some("United States"));
    }

    #[test]
    fn the_type_filter_keeps_one_kind() {
        let index = sample();
        let found = index.search("lisbon", Some(Kind::City), 8);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, Kind::City);
    }

    #[test]
    fn the_best_keys_are_kept_once_each() {
        let mut keys = vec![
            5 << 32 | 1,
            1 << 32 | 2,
            2 << 32 | 1,
            9 << 32 | 3,
            3 << 32 | 2,
        ];
        assert_eq!(best_distinct(&mut keys, 2), [2, 1]);
        let mut repeats = vec![1 << 32 | 7; 20];
        repeats.push(2 << 32 | 8);
        assert_eq!(best_distinct(&mut repeats, 2), [7, 8]);
    }

    #[test]
    fn the_limit_is_kept_and_nothing_repeats() {
        let index = sample();
        let found = index.search("a", None, 3);
        assert_eq!(found.len(), 3);
        let found = index.search("lis", None, 8);
        let mut ids: Vec<&str> = found.iter().map(|s| s.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), found.len());
    }
}
