// string-width as the CLI bundle uses it (scripts/build.js aliases the package to this file): printable ASCII,
// which is nearly every table cell, is one column per character; anything else goes to string-width itself.
// cli-table3 measures each cell four times or more, and string-width runs its emoji regular expression over
// every one: 11 ms of a 50-row `jobs list` in a fresh process.
const stringWidth = require('../node_modules/string-width/index.js')

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

const width = (s, options) => (typeof s === 'string' && PRINTABLE_ASCII.test(s) ? s.length : stringWidth(s, options))
module.exports = width
module.exports.default = width
