// Walk-forward windows that fit a symbol's candles: the form's proposal and its fold count.

const DAY_MS = 86_400_000;
export const DEFAULT_WINDOWS = { train: 90, test: 30, gap: 0 }; // the server's defaults
const TARGET_FOLDS = 4;
const TRAIN_TESTS = 3; // a proposed train window is three test windows long

/** Days from the first to the last candle (0 when unknown). */
export function spanDays(first, last) {
  const days = (new Date(last).getTime() - new Date(first).getTime()) / DAY_MS;
  return Number.isFinite(days) && days > 0 ? days : 0;
}

/**
 * Folds of train + gap + test days over `span` days, as the server counts them
 * (trad/training/validation.py): a fold fits when its test window ends by the last candle,
 * and the next one starts one test window later.
 */
export function countFolds(span, train, test, gap) {
  if (!(train > 0) || !(test > 0) || !(gap >= 0) || !(span > 0)) return 0;
  const room = span - train - gap - test;
  return room < 0 ? 0 : Math.floor(room / test + 1e-9) + 1;
}

/**
 * Windows for `span` days: the server's 90 + 30 when they give TARGET_FOLDS folds, else a
 * test window of span / (TARGET_FOLDS + TRAIN_TESTS) days, whole days from 1 day up
 * (hundredths of a day below), with a train window three times as long and no gap.
 * Null when not even that fits (under about an hour and a half of candles).
 */
export function proposeWindows(span) {
  const { train, test, gap } = DEFAULT_WINDOWS;
  if (countFolds(span, train, test, gap) >= TARGET_FOLDS) return { ...DEFAULT_WINDOWS };
  const raw = span / (TARGET_FOLDS + TRAIN_TESTS);
  const days = raw >= 1 ? Math.floor(raw) : Math.floor(raw * 100) / 100;
  return days > 0 ? { train: TRAIN_TESTS * days, test: days, gap: 0 } : null;
}
