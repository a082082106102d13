// The counter actor in JavaScript: the `example:counter/counter` world
// (examples-guests/wit/counter/counter.wit), behaving exactly like the Rust
// counter, snapshot encoding included, so that either can replace the other.
//
// componentize-js maps each exported interface to an exported object named
// after it, u64 to BigInt, list<u8> to Uint8Array, and `result<_, string>`
// to "return normally, or throw the error string".

import { log } from 'troupe:actor/host@0.2.0';

/** The snapshot format version this code writes and reads. */
const STATE_VERSION = 'counter/1';
const U64_MAX = (1n << 64n) - 1n;

let value = 0n;

export const api = {
    incr(by) {
        const next = value + by;
        // Overflow is a bug, as in every counter: an uncaught exception in a
        // function without a `result` is a trap, and the actor restarts.
        if (next > U64_MAX) {
            throw new Error('counter overflow');
        }
        value = next;
        return value;
    },
    get() {
        return value;
    },
    reset() {
        value = 0n;
    },
};

/**
 * Parses a u64 as Rust's `u64::from_str` does, with its error messages, so
 * that a bad `start` reads the same in every language.
 */
function parseU64(text) {
    if (text === '') throw 'cannot parse integer from empty string';
    const digits = text.startsWith('+') ? text.slice(1) : text;
    if (digits === '') throw 'invalid digit found in string';
    let n = 0n;
    for (const ch of digits) {
        if (ch < '0' || ch > '9') throw 'invalid digit found in string';
        n = n * 10n + BigInt(ch);
        if (n > U64_MAX) throw 'number too large to fit in target type';
    }
    return n;
}

export const lifecycle = {
    init(config) {
        const start = config.find(([key]) => key === 'start');
        value = 0n;
        if (start !== undefined) {
            try {
                value = parseU64(start[1]);
            } catch (why) {
                throw `config \`start\` = ${JSON.stringify(start[1])}: ${why}`;
            }
        }
        log('debug', 'counter (js) started', [['start', value.toString()]]);
    },
};

export const persistence = {
    snapshot() {
        const bytes = new Uint8Array(8);
        new DataView(bytes.buffer).setBigUint64(0, value, true);
        return { version: STATE_VERSION, bytes };
    },
    restore(state) {
        if (state.version !== STATE_VERSION) {
            throw `unknown state version \`${state.version}\` (expected \`${STATE_VERSION}\`)`;
        }
        if (state.bytes.length !== 8) {
            throw `state has ${state.bytes.length} bytes, expected 8`;
        }
        const bytes = Uint8Array.from(state.bytes);
        value = new DataView(bytes.buffer).getBigUint64(0, true);
    },
};
