// Failures the adapters must recognise whatever layer raised them.
export { isDatabaseDown } from "../db/errors.js";
