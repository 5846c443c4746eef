pub mod devnet;
