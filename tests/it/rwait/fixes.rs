//! Where rwait deliberately differs from inotifywait (man/rwait.1, DIFFERENCES): each
//! difference has a test here that shows rwait's behaviour.
