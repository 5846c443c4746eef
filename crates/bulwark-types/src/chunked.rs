//! [`ChunkedVec`]: a vector whose copies share its contents until they write to them.
//!
//! A validator copies the exchange's state for every block it speculates on (`bulwark-node`'s
//! chain), and a block changes a few hundred of its rows: order-book slots, accounts. A
//! `Vec` copies every row; this copies one pointer per chunk of `N` rows, and a write copies
//! the one chunk it lands in, if another copy still shares it. So a block pays for what it
//! touches, not for how big the venue has grown.
//!
//! Reads are two indexings. Every chunk but the last is full.

use std::sync::Arc;

/// A vector in chunks of `N` elements, each chunk shared between copies until written.
#[derive(Clone, Debug)]
pub struct ChunkedVec<T, const N: usize> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T, const N: usize> Default for ChunkedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> ChunkedVec<T, N> {
    pub const fn new() -> Self {
        const { assert!(N > 0, "chunks hold at least one element") };
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        (index < self.len).then(|| &self.chunks[index / N][index % N])
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator + '_ {
        ExactLen {
            inner: self.chunks.iter().flat_map(|chunk| chunk.iter()),
            left: self.len,
        }
    }

    /// Whether `self` and `other` hold the same chunk at chunk position `chunk`: neither has
    /// written to it since one was copied from the other. For tests of what a copy shares.
    pub fn shares_chunk(&self, other: &Self, chunk: usize) -> bool {
        match (self.chunks.get(chunk), other.chunks.get(chunk)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Chunks held: `len` divided by `N`, rounded up.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl<T: Clone, const N: usize> ChunkedVec<T, N> {
    /// The element at `index`, its chunk copied first if another copy shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        Some(&mut Arc::make_mut(&mut self.chunks[index / N])[index % N])
    }

    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < N => Arc::make_mut(chunk).push(value),
            _ => {
                let mut chunk = Vec::with_capacity(N);
                chunk.push(value);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }
}

impl<T, const N: usize> std::ops::Index<usize> for ChunkedVec<T, N> {
    type Output = T;
    fn index(&self, index: usize) -> &T {
        assert!(index < self.len, "index {index} of {}", self.len);
        &self.chunks[index / N][index % N]
    }
}

impl<T: Clone, const N: usize> std::ops::IndexMut<usize> for ChunkedVec<T, N> {
    /// Copies the element's chunk first if another copy shares it.
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        self.get_mut(index)
            .unwrap_or_else(|| panic!("index {index} of {len}"))
    }
}

impl<T: Clone, const N: usize> FromIterator<T> for ChunkedVec<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = Self::new();
        for value in iter {
            out.push(value);
        }
        out
    }
}

/// A flattened iterator that knows its length.
struct ExactLen<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let next = self.inner.next();
        if next.is_some() {
            self.left -= 1;
        }
        next
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: DoubleEndedIterator> DoubleEndedIterator for ExactLen<I> {
    fn next_back(&mut self) -> Option<I::Item> {
        let next = self.inner.next_back();
        if next.is_some() {
            self.left -= 1;
        }
        next
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a `Vec`: pushes and writes to a copy leave the original as it was, and
        /// the copy shares every chunk it did not write.
        #[test]
        fn a_copy_is_a_vec_that_shares_what_it_did_not_write(
            len in 0usize..200,
            writes in proptest::collection::vec((0usize..200, any::<u32>()), 0..20),
            pushes in 0usize..20,
        ) {
            let original: ChunkedVec<u32, 8> = (0..len as u32).collect();
            let mut model: Vec<u32> = (0..len as u32).collect();
            let mut copy = original.clone();
            let mut written = std::collections::BTreeSet::new();
            for (at, value) in writes {
                if at < len {
                    copy[at] = value;
                    model[at] = value;
                    written.insert(at / 8);
                } else {
                    prop_assert!(copy.get_mut(at).is_none());
                }
            }
            for i in 0..pushes {
                copy.push(i as u32);
                model.push(i as u32);
            }
            prop_assert_eq!(copy.iter().copied().collect::<Vec<_>>(), model.clone());
            prop_assert_eq!(copy.iter().rev().count(), model.len());
            prop_assert_eq!(copy.iter().len(), model.len());
            prop_assert_eq!(copy.len(), model.len());
            prop_assert!(original.iter().copied().eq(0..len as u32), "the original is untouched");
            for chunk in 0..original.chunk_count() {
                let last_partial = chunk + 1 == original.chunk_count() && len % 8 != 0;
                let changed = written.contains(&chunk) || (pushes > 0 && last_partial);
                prop_assert_eq!(original.shares_chunk(&copy, chunk), !changed, "chunk {}", chunk);
            }
        }
    }
}
