// MUST NOT compile: BroadcastOperator is made by an Emitter only (its constructor is private). expect: TS2673
import { BroadcastOperator } from "sioadapter";

export const op = new BroadcastOperator();
