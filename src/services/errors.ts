// Failures the adapters must recognise whatever layer raised them.
export { isAccountGone, isDatabaseDown } from "../db/errors.js";
