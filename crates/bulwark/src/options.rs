//! `bulwark options`: JSON lines in, one JSON answer line out per request line, in order.
//!
//! Owns: reading lines under a byte bound and writing answers; the answers themselves come
//! from [`bulwark_pricing::jsonl`].
//! Never: buffers more than [`LINE_BYTES_MAX`] bytes of one line (the rest of an over-long
//! line is read and dropped), or stops on a bad line: every line gets an answer.

use bulwark_pricing::jsonl::{LINE_BYTES_MAX, answer_line_bytes, answer_line_too_long};
use std::io::{self, BufRead, Write};

/// Answers every line of `input` on `output`, flushing after each answer so that a caller
/// holding a pipe open gets its answer before it writes the next request. Returns the number
/// of lines answered.
pub fn serve(mut input: impl BufRead, mut output: impl Write) -> io::Result<u64> {
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut answered: u64 = 0;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            // End of input: a last line without a newline is still a request.
            if too_long || !line.is_empty() {
                answer(&mut output, &line, too_long)?;
                answered += 1;
            }
            return Ok(answered);
        }
        let (taken, complete) = match chunk.iter().position(|b| *b == b'\n') {
            Some(end) => (end + 1, Some(end)),
            None => (chunk.len(), None),
        };
        let body = &chunk[..complete.unwrap_or(taken)];
        if !too_long {
            if line.len() + body.len() > LINE_BYTES_MAX {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(body);
            }
        }
        input.consume(taken);
        if complete.is_some() {
            answer(&mut output, &line, too_long)?;
            answered += 1;
            line.clear();
            too_long = false;
        }
    }
}

fn answer(output: &mut impl Write, line: &[u8], too_long: bool) -> io::Result<()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = if too_long {
        answer_line_too_long()
    } else {
        answer_line_bytes(line)
    };
    output.write_all(text.as_bytes())?;
    output.write_all(b"\n")?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(input: &[u8]) -> Vec<Value> {
        let mut out = Vec::new();
        let n = serve(input, &mut out).unwrap();
        let answers: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len() as u64, n);
        answers
    }

    #[test]
    fn one_answer_per_line_in_order_even_for_garbage() {
        let mut input = Vec::new();
        input.extend_from_slice(
            br#"{"op":"price","kind":"call","forward":100,"strike":100,"time":1,"vol":0.2,"id":1}"#,
        );
        input.extend_from_slice(b"\nnot json\r\n\xff\xfe\n");
        input.extend_from_slice(
            br#"{"op":"iv","kind":"call","forward":100,"strike":100,"time":1,"price":200,"id":4}"#,
        );
        let answers = run(&input);
        assert_eq!(answers.len(), 4);
        assert!(answers[0]["price"].as_f64().unwrap() > 7.9);
        assert_eq!(answers[1]["code"], "malformed");
        assert_eq!(answers[2]["code"], "malformed");
        assert_eq!(answers[3]["id"], 4);
        assert_eq!(answers[3]["code"], "above_upper_bound");
    }

    #[test]
    fn an_over_long_line_is_dropped_and_the_next_line_still_answered() {
        let mut input = vec![b'x'; LINE_BYTES_MAX + 10];
        input.push(b'\n');
        input.extend_from_slice(
            br#"{"op":"price","kind":"put","forward":100,"strike":90,"time":0.5,"vol":0.3}"#,
        );
        let answers = run(&input);
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0]["code"], "line_too_long");
        assert!(answers[1]["price"].as_f64().unwrap() > 0.0);
    }
}
