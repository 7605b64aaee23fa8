//! Keyset paging: a page continues after the `seq` of the last row of the previous page, so
//! page 3,000 costs what page 1 does.

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 999;

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after_seq: Option<i64>,
    pub size: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { after_seq: None, size: DEFAULT_PAGE_SIZE }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `seq` to continue after, when there may be more rows.
    pub next_after_seq: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` `(seq, item)` rows fetched by the caller.
    pub fn from_rows(mut rows: Vec<(i64, T)>, size: usize) -> Page<T> {
        let more = rows.len() > size;
        rows.truncate(size);
        let next_after_seq = if more { rows.last().map(|(seq, _)| *seq) } else { None };
        Page { items: rows.into_iter().map(|(_, t)| t).collect(), next_after_seq }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_after_seq: self.next_after_seq }
    }
}
