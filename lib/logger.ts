/** Where the server reports what an operator should know; a host may pass its own. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const consoleLogger: Logger = {
  info: (message) => console.error(`pigeonhole: ${message}`),
  warn: (message) => console.error(`pigeonhole: warning: ${message}`),
  error: (message) => console.error(`pigeonhole: ERROR: ${message}`),
};

export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
