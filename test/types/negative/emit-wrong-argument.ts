// MUST NOT compile: a typed Emitter given an argument of the wrong type. expect: TS2345
import { Emitter } from "sioadapter";

interface Events {
  basicEmit: (a: number, b: string, c: number[]) => void;
}

const io = new Emitter<Events>("redis://localhost:6379");
io.emit("basicEmit", "1", "2", [3]);
