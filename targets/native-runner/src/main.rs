//! teenygrad-native-run --engine wamr|wasm3 [--repeat N] <blob.wasm>  < request  > response
//!
//! Instantiates an UNMODIFIED teenygrad reactor blob (exports `memory` and `run() -> i32`, no imports) in the
//! WAMR fast interpreter or in wasm3, and speaks the wasmtime adapter's protocol (targets/wasmtime/adapter.ts),
//! so the TypeScript side shares one encoder and decoder (targets/protocol.ts):
//!
//!   request (stdin, u32 little-endian):
//!     count, then count x (offset, length, <length bytes>)   bytes to write into model memory (inputs, weights)
//!     count, then count x (offset, length)                   model memory ranges to send back (outputs)
//!   response (stdout): u32 status from run(); when it is 0, the requested ranges' bytes in order.
//!
//! Exit codes as the adapter's: 70 stdin ended early, 71 stdin read error, 72 stdout write error, 73 range outside
//! model memory; 64 bad command line, 1 anything else (unreadable blob, load/instantiation failure, trap), with
//! the reason on stderr.
//!
//! `--repeat N` runs the model N times, writing the request's bytes again before each run (run() may overwrite
//! its inputs), and answers with the last run's outputs. Every run's duration, timed around the call to `run`
//! alone, is printed on stderr as one line: `run-ns: <ns> <ns> ...`.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::process::exit;
use std::time::Instant;

const USAGE: &str = "usage: teenygrad-native-run --engine wamr|wasm3 [--repeat N] <blob.wasm>";

const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 64;
const EXIT_STDIN_ENDED: i32 = 70;
const EXIT_STDIN_ERROR: i32 = 71;
const EXIT_STDOUT_ERROR: i32 = 72;
const EXIT_RANGE: i32 = 73;

/// wasm3's value stack, in slots (4 bytes each with 32-bit slots): 1 MiB, far above what the kernels need
const WASM3_STACK_SLOTS: u32 = 256 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum EngineName {
    Wamr,
    Wasm3,
}

impl EngineName {
    fn label(self) -> &'static str {
        match self {
            EngineName::Wamr => "wamr",
            EngineName::Wasm3 => "wasm3",
        }
    }
}

struct Args {
    engine: EngineName,
    repeat: u32,
    blob: String,
}

struct Request {
    writes: Vec<(u32, Vec<u8>)>,
    reads: Vec<(u32, u32)>,
}

/// A failure that ends the process with `code`, after printing `message` on stderr.
struct Exit {
    code: i32,
    message: String,
}

fn failure(message: String) -> Exit {
    Exit {
        code: EXIT_FAILURE,
        message,
    }
}

/// What the protocol needs from an instantiated blob.
trait Model {
    fn memory(&mut self) -> &mut [u8];
    fn run(&mut self) -> Result<i32, String>;
}

struct Wamr<'a> {
    memory: wamrx::Memory<'a>,
    run: wamrx::Func<'a>,
}

impl Model for Wamr<'_> {
    fn memory(&mut self) -> &mut [u8] {
        self.memory.data_mut()
    }

    fn run(&mut self) -> Result<i32, String> {
        let mut results = [wamrx::Val::I32(0)];
        self.run
            .call(&[], &mut results)
            .map_err(|e| e.to_string())?;
        match results[0] {
            wamrx::Val::I32(status) => Ok(status),
            other => Err(format!("run() returned {other:?}, not an i32")),
        }
    }
}

struct Wasm3<'rt> {
    runtime: &'rt wasm3::Runtime,
    run: wasm3::Function<'rt, (), i32>,
}

impl Model for Wasm3<'_> {
    fn memory(&mut self) -> &mut [u8] {
        // SAFETY: the blob's memory never grows (initial == maximum, no memory.grow), so the allocation wasm3 made
        // at load time stays put; the slice is dropped before the next call into wasm3.
        unsafe { &mut *self.runtime.memory_mut() }
    }

    fn run(&mut self) -> Result<i32, String> {
        self.run.call().map_err(|e| e.to_string())
    }
}

fn main() {
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|message| {
        eprintln!("teenygrad-native-run: {message}\n{USAGE}");
        exit(EXIT_USAGE);
    });
    if let Err(e) = serve(&args) {
        eprintln!(
            "teenygrad-native-run: {}: {}",
            args.engine.label(),
            e.message
        );
        exit(e.code);
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut engine = None;
    let mut repeat = 1;
    let mut blob = None;
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--engine" => {
                engine = Some(match argv.next().as_deref() {
                    Some("wamr") => EngineName::Wamr,
                    Some("wasm3") => EngineName::Wasm3,
                    Some(other) => {
                        return Err(format!("--engine expects wamr or wasm3, got {other}"))
                    }
                    None => return Err("--engine expects wamr or wasm3".to_string()),
                })
            }
            "--repeat" => {
                repeat = argv
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--repeat expects a positive integer")?
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if blob.is_none() => blob = Some(path.to_string()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    Ok(Args {
        engine: engine.ok_or("missing --engine")?,
        repeat,
        blob: blob.ok_or("missing the blob path")?,
    })
}

fn serve(args: &Args) -> Result<(), Exit> {
    let bytes = std::fs::read(&args.blob)
        .map_err(|e| failure(format!("cannot read {}: {e}", args.blob)))?;
    let request = read_request(&mut BufReader::new(io::stdin().lock()))?;
    match args.engine {
        EngineName::Wamr => {
            let engine = wamrx::Engine::new().map_err(|e| failure(e.to_string()))?;
            let module = wamrx::Module::new(&engine, &bytes).map_err(|e| failure(e.to_string()))?;
            let instance = wamrx::Linker::new(&engine)
                .instantiate(module)
                .map_err(|e| failure(e.to_string()))?;
            let memory = instance
                .get_memory("memory")
                .map_err(|e| failure(e.to_string()))?;
            let run = instance
                .get_func("run")
                .map_err(|e| failure(e.to_string()))?;
            answer(&mut Wamr { memory, run }, &request, args.repeat)
        }
        EngineName::Wasm3 => {
            let environment = wasm3::Environment::new().map_err(|e| failure(e.to_string()))?;
            let runtime = wasm3::Runtime::new(&environment, WASM3_STACK_SLOTS)
                .map_err(|e| failure(e.to_string()))?;
            runtime
                .parse_and_load_module(bytes)
                .map_err(|e| failure(format!("cannot load the blob: {e}")))?;
            let run = runtime
                .find_function::<(), i32>("run")
                .map_err(|e| failure(format!("no run() -> i32 export: {e}")))?;
            answer(
                &mut Wasm3 {
                    runtime: &runtime,
                    run,
                },
                &request,
                args.repeat,
            )
        }
    }
}

/// Runs the model `repeat` times on the request and writes the response; prints the run times on stderr.
fn answer(model: &mut dyn Model, request: &Request, repeat: u32) -> Result<(), Exit> {
    let memory_bytes = model.memory().len() as u64;
    let ranges = request
        .writes
        .iter()
        .map(|(offset, bytes)| (*offset, bytes.len() as u32))
        .chain(request.reads.iter().copied());
    for (offset, length) in ranges {
        if offset as u64 + length as u64 > memory_bytes {
            return Err(Exit {
                code: EXIT_RANGE,
                message: format!("range [{offset}, +{length}) lies outside the model's {memory_bytes} bytes of memory"),
            });
        }
    }

    let mut nanos = Vec::with_capacity(repeat as usize);
    let mut status = 0;
    for _ in 0..repeat {
        let memory = model.memory();
        for (offset, bytes) in &request.writes {
            memory[*offset as usize..][..bytes.len()].copy_from_slice(bytes);
        }
        let start = Instant::now();
        status = model.run().map_err(failure)?;
        nanos.push(start.elapsed().as_nanos());
        if status != 0 {
            break;
        }
    }
    eprintln!(
        "run-ns: {}",
        nanos
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );

    let stdout_error = |e: io::Error| Exit {
        code: EXIT_STDOUT_ERROR,
        message: format!("cannot write stdout: {e}"),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    out.write_all(&(status as u32).to_le_bytes())
        .map_err(stdout_error)?;
    if status == 0 {
        let memory = model.memory();
        for &(offset, length) in &request.reads {
            out.write_all(&memory[offset as usize..][..length as usize])
                .map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)
}

fn read_request(input: &mut impl Read) -> Result<Request, Exit> {
    let mut writes = Vec::new();
    for _ in 0..read_u32(input)? {
        let offset = read_u32(input)?;
        let length = read_u32(input)?;
        // read through take() rather than into a buffer of `length` bytes, so a corrupt length cannot allocate
        let mut bytes = Vec::new();
        input
            .take(length as u64)
            .read_to_end(&mut bytes)
            .map_err(stdin_error)?;
        if bytes.len() != length as usize {
            return Err(stdin_ended());
        }
        writes.push((offset, bytes));
    }
    let mut reads = Vec::new();
    for _ in 0..read_u32(input)? {
        reads.push((read_u32(input)?, read_u32(input)?));
    }
    Ok(Request { writes, reads })
}

fn read_u32(input: &mut impl Read) -> Result<u32, Exit> {
    let mut word = [0u8; 4];
    input.read_exact(&mut word).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            stdin_ended()
        } else {
            stdin_error(e)
        }
    })?;
    Ok(u32::from_le_bytes(word))
}

fn stdin_ended() -> Exit {
    Exit {
        code: EXIT_STDIN_ENDED,
        message: "stdin ended before the whole request was read".to_string(),
    }
}

fn stdin_error(e: io::Error) -> Exit {
    Exit {
        code: EXIT_STDIN_ERROR,
        message: format!("cannot read stdin: {e}"),
    }
}
