/** The ER7 delimiters a message declares in MSH-1 and MSH-2. */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** MSH-2 5th char (v2.7+), only when the sender declares it. */
  truncation?: string;
}

export const STANDARD_DELIMITERS: Readonly<Delimiters> = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
});
