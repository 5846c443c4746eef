//! The layout of a validator's storage: settings fixed for the life of the data, recorded
//! beside it, so that a directory is always read the way it was written.
//!
//! Owns: the record (a Commonware `Metadata` partition, `{prefix}-layout`) and the one setting
//! it holds so far, the views per section of marshal's cache
//! ([`crate::engine::MARSHAL_CACHE_SECTION_VIEWS`]). A fresh directory records the current
//! value. A directory that a validator already ran in but that has no record was written
//! before the record existed, with [`LEGACY_MARSHAL_CACHE_SECTION_VIEWS`], and keeps that
//! value. Without this, changing the constant made Commonware's marshal panic on an old
//! directory ("failed to initialize verified archive"): a devnet could not resume after an
//! upgrade.
//! Never: guesses past a record. One that does not decode, or holds zero, is an error and the
//! validator does not start.

use commonware_runtime::{Clock, Metrics, Storage};
use commonware_storage::metadata::{Config, Metadata};
use commonware_utils::sequence::U64;
use std::num::NonZeroU64;

/// Views per section of marshal's cache in directories written before the layout record.
pub const LEGACY_MARSHAL_CACHE_SECTION_VIEWS: u64 = 10;

/// Key of the marshal cache's views per section in the record.
const MARSHAL_CACHE_SECTION_KEY: u64 = 0;

/// Why a validator's storage layout cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("storage layout record: {0}")]
    Record(#[from] commonware_storage::metadata::Error),
    #[error("storage layout record holds zero views per section of marshal's cache")]
    ZeroSection,
    #[error("storage layout: cannot tell whether partition {partition} exists: {error}")]
    Scan {
        partition: String,
        error: commonware_runtime::Error,
    },
}

/// How this validator's storage is laid out.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Views per section of marshal's cache.
    pub marshal_cache_section_views: NonZeroU64,
}

/// Reads the layout of the storage under `prefix`, recording `current` first if the
/// directory is fresh (see the module doc). `ran_before` names partitions that every
/// validator that started once has created.
pub async fn open<E: Storage + Clock + Metrics>(
    context: E,
    prefix: &str,
    current: NonZeroU64,
    ran_before: &[String],
) -> Result<Layout, LayoutError> {
    let mut record: Metadata<E, U64, u64> = Metadata::init(
        context.child("record"),
        Config {
            partition: format!("{prefix}-layout"),
            codec_config: (),
        },
    )
    .await?;
    let key = U64::new(MARSHAL_CACHE_SECTION_KEY);
    if let Some(views) = record.get(&key) {
        let views = NonZeroU64::new(*views).ok_or(LayoutError::ZeroSection)?;
        return Ok(Layout {
            marshal_cache_section_views: views,
        });
    }
    let mut ran = false;
    for partition in ran_before {
        match context.scan(partition).await {
            Err(commonware_runtime::Error::PartitionMissing(_)) => {}
            Ok(_) => ran = true,
            Err(error) => {
                return Err(LayoutError::Scan {
                    partition: partition.clone(),
                    error,
                });
            }
        }
    }
    let views = if ran {
        NonZeroU64::new(LEGACY_MARSHAL_CACHE_SECTION_VIEWS).expect("positive")
    } else {
        current
    };
    record.put(key, views.get());
    record.sync().await?;
    Ok(Layout {
        marshal_cache_section_views: views,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Blob as _, Runner as _, Supervisor as _, deterministic};

    const CURRENT: NonZeroU64 = NonZeroU64::new(100).unwrap();

    fn ran_before() -> Vec<String> {
        vec!["v-simplex".to_string()]
    }

    /// What a validator's first start leaves: a partition that `ran_before` names.
    async fn run_once(context: &deterministic::Context) {
        let (blob, _) = context.open("v-simplex", b"0").await.unwrap();
        blob.sync().await.unwrap();
    }

    #[test]
    fn a_fresh_directory_records_the_current_layout_and_keeps_it() {
        deterministic::Runner::default().start(|context| async move {
            let first = open(context.child("a"), "v", CURRENT, &ran_before())
                .await
                .unwrap();
            assert_eq!(first.marshal_cache_section_views, CURRENT);
            // The validator then writes its partitions; a later start reads the record,
            // not the partitions, and a new default does not change it.
            run_once(&context).await;
            let other = NonZeroU64::new(7).unwrap();
            let again = open(context.child("b"), "v", other, &ran_before())
                .await
                .unwrap();
            assert_eq!(again, first);
        });
    }

    #[test]
    fn a_directory_from_before_the_record_keeps_the_legacy_layout() {
        deterministic::Runner::default().start(|context| async move {
            run_once(&context).await;
            let layout = open(context.child("a"), "v", CURRENT, &ran_before())
                .await
                .unwrap();
            assert_eq!(
                layout.marshal_cache_section_views.get(),
                LEGACY_MARSHAL_CACHE_SECTION_VIEWS
            );
            // Recorded: it stays legacy.
            let again = open(context.child("b"), "v", CURRENT, &ran_before())
                .await
                .unwrap();
            assert_eq!(again, layout);
        });
    }

    #[test]
    fn a_record_of_zero_is_refused() {
        deterministic::Runner::default().start(|context| async move {
            let mut record: Metadata<_, U64, u64> = Metadata::init(
                context.child("forge"),
                Config {
                    partition: "v-layout".into(),
                    codec_config: (),
                },
            )
            .await
            .unwrap();
            record.put(U64::new(MARSHAL_CACHE_SECTION_KEY), 0);
            drop(record.sync().await.unwrap());
            let result = open(context.child("a"), "v", CURRENT, &ran_before()).await;
            assert!(matches!(result, Err(LayoutError::ZeroSection)));
        });
    }
}
